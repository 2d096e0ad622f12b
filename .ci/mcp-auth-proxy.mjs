// A loopback proxy that adds `Authorization: Bearer $MCP_TOKEN` to every request and passes
// everything else through unchanged (Host and Origin included, so the DNS-rebinding checks
// still see what the suite sent). The MCP conformance suite has no option to authenticate,
// and the hub's /mcp always asks for a token: this is how the suite reaches it.
// Usage: MCP_TOKEN=… node mcp-auth-proxy.mjs http://127.0.0.1:HUBPORT   (prints its own URL)
import http from "node:http";

const target = new URL(process.argv[2]);
const token = process.env.MCP_TOKEN;
if (!token) {
  console.error("MCP_TOKEN is not set");
  process.exit(2);
}
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
    (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    },
  );
  upstream.on("error", (e) => {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`proxy: ${e.message}`);
  });
  req.pipe(upstream);
  res.on("close", () => upstream.destroy());
});
server.listen(0, "127.0.0.1", () => {
  console.log(`proxy listening on http://127.0.0.1:${server.address().port}`);
});
