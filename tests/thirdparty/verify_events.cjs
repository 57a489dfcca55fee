// Feed AG-UI events through the official client's pipeline (@ag-ui/client's
// transformChunks, which expands *_CHUNK shorthands, then verifyEvents), as its
// HttpAgent does, and say what it thinks of each stream. Run with NODE_PATH set
// to the node_modules that holds @ag-ui/client (tests/provision.py installs it).
// Input (stdin): one JSON document per line: {"name": ..., "events": [...]}.
// Output (stdout): one JSON line per stream: {"name", "ok", "error"}.
const { transformChunks, verifyEvents } = require("@ag-ui/client");
const { from, lastValueFrom, toArray } = require("rxjs");
const { createInterface } = require("node:readline");

(async () => {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { name, events } = JSON.parse(line);
    let ok = true, error = null;
    try {
      await lastValueFrom(from(events).pipe(transformChunks(false), verifyEvents(false), toArray()));
    } catch (e) {
      ok = false;
      error = String(e && e.message ? e.message : e);
    }
    process.stdout.write(JSON.stringify({ name, ok, error }) + "\n");
  }
})();
