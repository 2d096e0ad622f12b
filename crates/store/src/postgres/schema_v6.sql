-- Switchboard PostgreSQL schema, migration 6: tenants. Tenant names are unique on the
-- platform, and the bootstrap token becomes the platform operator's (`operator`): until now
-- the only admin token of the default tenant was the bootstrap one, stored as `admin`; new
-- tenants' admin tokens stay `admin`. Idempotent like the others.
CREATE UNIQUE INDEX IF NOT EXISTS tenants_name ON tenants (name);
UPDATE tokens SET principal = 'operator' WHERE tenant_id = 'default' AND principal = 'admin';
