// Runs what the Node client can do against `qibo-backend-<name>` and prints one JSON object
// per step (the test suite reads them):  node demo.js numpy
"use strict";

const { Backend, BackendError, BackendCrashed } = require("./qibo-core-client.js");

const BELL = {
  nqubits: 2,
  gates: [{ name: "H", qubits: [0] }, { name: "CNOT", qubits: [0, 1] }],
  measurements: [{ qubits: [0, 1] }],
};

function report(step, value) {
  console.log(JSON.stringify({ step, ...value }));
}

async function main(name) {
  const backend = await Backend.connect(name);
  report("connected", { server: backend.info.serverInfo.name,
                        protocolVersion: backend.info.protocolVersion });

  const run = await backend.execute(BELL, { nshots: 1000, seed: 7 });
  report("execute", { frequencies: run.frequencies, state: await backend.read(run.state) });
  backend.free(run.state);

  const state = await backend.newState(3);
  backend.apply(state, [{ name: "X", qubits: [0] },
                        { name: "RY", qubits: [2], params: { theta: 1.2 } }]);
  report("streamed", { probabilities: await backend.probabilities(state, [0, 2]),
                       sample: await backend.sample(state, 100, { qubits: [2, 0], seed: 3 }) });

  backend.apply(state, [{ name: "X", qubits: [7] }]); // invalid: fails the next request
  try {
    await backend.read(state);
    report("gate failed", { caught: false });
  } catch (error) {
    report("gate failed", { caught: error instanceof BackendError, code: error.code,
                            index: error.data && error.data.index });
  }
  report("usable after", { amplitudes: (await backend.read(state)).length });

  report("closed", { exitCode: await backend.close() });

  const doomed = await Backend.connect(name);
  const waiting = doomed.execute(BELL, { nshots: 10 });
  doomed.child.kill("SIGKILL");
  try {
    await waiting;
    report("crash", { caught: false });
  } catch (error) {
    report("crash", { caught: error instanceof BackendCrashed, message: error.message });
  }
}

main(process.argv[2] || "numpy").catch((error) => {
  console.error(error);
  process.exit(1);
});
