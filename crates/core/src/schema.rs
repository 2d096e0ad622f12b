//! OpenAPI schemas for wire fields whose rule a `#[schema(...)]` attribute cannot state (a
//! constraint on the items of an optional list, a value that is an object or a boolean), so
//! that the document at `/openapi.json` tells clients and fuzzers what the server enforces.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

/// Most steps in a push retry schedule.
pub const MAX_RETRY_STEPS: usize = 50;
/// Longest wait before one retry, milliseconds (7 days).
pub const MAX_RETRY_STEP_MS: u64 = 7 * 24 * 3_600_000;

/// `retry_schedule_ms`: at most [`MAX_RETRY_STEPS`] waits of at most [`MAX_RETRY_STEP_MS`].
pub fn retry_schedule() -> impl Into<RefOr<Schema>> {
    let step = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
        .minimum(Some(0u64))
        .maximum(Some(MAX_RETRY_STEP_MS));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(step)
        .max_items(Some(MAX_RETRY_STEPS))
        .description(Some(
            "Milliseconds to wait before each push retry (at most 50 steps of at most 7 days); after the last, \
             the delivery is dead.",
        ))
}

/// A JSON Schema given by a client (`input_schema`, `output_schema`): an object or a boolean.
pub fn json_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Boolean, Type::Null]))
        .description(Some("A JSON Schema (an object, or `true`/`false`)."))
}

/// `retry_in_ms` of a nack: any unsigned 64-bit count is taken, and more than 24 hours counts
/// as 24 hours (so no `format: int64`, whose range would wrongly refuse the largest values).
pub fn retry_in_ms() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(0u64))
        .maximum(Some(u64::MAX))
        .description(Some(
            "Redeliver after this many milliseconds (default: at once; more than 24 hours counts as 24 hours).",
        ))
}
