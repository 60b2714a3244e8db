// A qibo-core client for Node, with nothing but Node: it finds `qibo-backend-<name>` on PATH,
// spawns it, speaks docs/protocol.md over its stdin and stdout (one JSON-RPC message per line),
// and shuts it down. Arrays cross as base64 (section 2.4 of the protocol).
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const PROTOCOL_VERSION = 2; // the newest version this client speaks

/** An error the backend answered: `code` is the JSON-RPC code (-32004 GateFailed...). */
class BackendError extends Error {
  constructor(method, error) {
    super(`${method}: ${error.message} (code ${error.code})`);
    this.code = error.code;
    this.data = error.data;
  }
}

/** The backend process ended while requests were waiting, or before it was asked to. */
class BackendCrashed extends Error {}

/** The path of `qibo-backend-<name>` on PATH, or an error listing where it looked. */
function findBackend(name) {
  const folders = (process.env.PATH || "").split(path.delimiter).filter(Boolean);
  for (const folder of folders) {
    const candidate = path.join(folder, `qibo-backend-${name}`);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`no executable qibo-backend-${name} on PATH (${folders.join(", ")})`);
}

/** Complex amplitudes from an Array of the protocol: [[re, im], ...]. */
function decodeArray(array) {
  const bytes = Buffer.from(array.data, "base64");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (array.dtype === "float64") {
    return Array.from({ length: bytes.length / 8 }, (_, k) => view.getFloat64(8 * k, true));
  }
  const size = { complex128: 8, complex64: 4 }[array.dtype];
  if (!size) throw new Error(`unexpected dtype ${array.dtype}`);
  const read = size === 8 ? (o) => view.getFloat64(o, true) : (o) => view.getFloat32(o, true);
  return Array.from({ length: bytes.length / (2 * size) },
                    (_, k) => [read(2 * size * k), read(2 * size * k + size)]);
}

class Backend {
  /** Spawn `qibo-backend-<name>` and handshake; resolves to a ready Backend. */
  static async connect(name) {
    const backend = new Backend(findBackend(name));
    const hello = (version) => backend.request("initialize", {
      protocolVersion: version, clientInfo: { name: "qibo-core-node", version: "0.1.0" },
    });
    try {
      backend.info = await hello(PROTOCOL_VERSION);
    } catch (error) {
      // An older backend refuses our version and lists its own: speak the newest we share.
      const theirs = (error.data && error.data.supported) || [];
      const common = theirs.filter((v) => v <= PROTOCOL_VERSION);
      if (error.code !== -32001 || common.length === 0) throw error;
      backend.info = await hello(Math.max(...common));
    }
    return backend;
  }

  constructor(executable) {
    this.child = spawn(executable, [], { stdio: ["pipe", "pipe", "pipe"] });
    this.pending = new Map(); // id -> {resolve, reject, method}
    this.nextId = 1;
    this.buffer = "";
    this.stderr = "";
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exitCode = code;
        const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        for (const { reject, method } of this.pending.values()) {
          reject(new BackendCrashed(`the backend ${why} during ${method}; its stderr: ` +
                                    this.stderr.slice(-500)));
        }
        this.pending.clear();
        resolve(code);
      });
    });
    this.child.stdin.on("error", () => {}); // a dead backend: the exit handler reports it
    this.child.stderr.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4096);
    });
    this.child.stdout.on("data", (chunk) => this.receive(chunk));
  }

  receive(chunk) {
    this.buffer += chunk;
    let end;
    while ((end = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      if (!line.trim()) continue;
      const message = JSON.parse(line);
      if (message.method !== undefined) continue; // $/progress: not asked for here
      const waiting = this.pending.get(message.id);
      if (!waiting) continue;
      this.pending.delete(message.id);
      if (message.error) waiting.reject(new BackendError(waiting.method, message.error));
      else waiting.resolve(message.result);
    }
  }

  send(message) {
    if (this.exitCode !== undefined) {
      throw new BackendCrashed(`the backend has exited (code ${this.exitCode})`);
    }
    this.child.stdin.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
  }

  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      try {
        this.send(params === undefined ? { id, method } : { id, method, params });
      } catch (error) {
        this.pending.delete(id);
        reject(error);
      }
    });
  }

  notify(method, params) {
    this.send({ method, params });
  }

  /** Run a circuit given as data ({nqubits, gates, measurements}); {state, frequencies}. */
  execute(circuit, { nshots = 0, seed } = {}) {
    return this.request("execute", seed === undefined ? { circuit, nshots }
                                                       : { circuit, nshots, seed });
  }

  async newState(nqubits) {
    return (await this.request("state/new", { nqubits })).state;
  }

  /** Stream gates into a held state without waiting: an invalid one fails the next request
   * naming the state, with GateFailed (code -32004). */
  apply(state, gates) {
    this.notify("state/apply", { state, gates });
  }

  async read(state) {
    return decodeArray(await this.request("state/read", { state }));
  }

  async probabilities(state, qubits) {
    return decodeArray(await this.request("state/probabilities", { state, qubits }));
  }

  async sample(state, nshots, { qubits, seed } = {}) {
    const params = { state, nshots };
    if (qubits !== undefined) params.qubits = qubits;
    if (seed !== undefined) params.seed = seed;
    return (await this.request("state/sample", params)).frequencies;
  }

  free(state) {
    this.notify("state/free", { state });
  }

  /** shutdown, then exit; resolves to the exit code (0 for a clean end). */
  async close() {
    if (this.exitCode === undefined) {
      await this.request("shutdown");
      this.notify("exit");
      this.child.stdin.end();
    }
    return this.exited;
  }
}

module.exports = { Backend, BackendError, BackendCrashed, findBackend, decodeArray };
