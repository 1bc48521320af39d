// llama.cpp through node-llama-cpp (pinned in package.json) on a GGUF file:
// its prebuilt CPU binaries only, never a build or a download.
//
//   node llama_cpp.mjs greedy <model.gguf> <tokens>
//     prints the greedy token ids after BOS as a JSON array
//   node llama_cpp.mjs decode <model.gguf> <threads> <sequences> <tokens>
//     prints {"tok_s": aggregate decode tokens/s} for <sequences> streams of
//     <tokens> tokens each, decoded together (llama.cpp batches them)
import process from "node:process";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const BOS = 1;

async function load(modelPath, threads, sequences, contextSize) {
  const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: threads,
  });
  const model = await llama.loadModel({modelPath, gpuLayers: 0});
  const context = await model.createContext({
    contextSize: contextSize * sequences,
    sequences,
    threads,
    batchSize: Math.max(sequences, 8),
  });
  return {llama, model, context};
}

// `count` greedy tokens after BOS on one sequence.
async function generate(sequence, count) {
  const out = [];
  for await (const token of sequence.evaluate([BOS], {temperature: 0})) {
    out.push(token);
    if (out.length === count) break;
  }
  return out;
}

async function main() {
  const [mode, modelPath, ...rest] = process.argv.slice(2);
  if (mode === "greedy") {
    const count = Number(rest[0]);
    const {context} = await load(modelPath, 1, 1, count + 8);
    const tokens = await generate(context.getSequence(), count);
    process.stdout.write(JSON.stringify(tokens) + "\n");
  } else if (mode === "decode") {
    const [threads, sequences, count] = rest.map(Number);
    const {context} = await load(modelPath, threads, sequences, count + 8);
    const seqs = Array.from({length: sequences}, () => context.getSequence());
    // The first token of each is prefill; decode is timed from there.
    await Promise.all(seqs.map((s) => generate(s, 1)));
    for (const s of seqs) await s.clearHistory();
    const t0 = process.hrtime.bigint();
    const runs = await Promise.all(seqs.map((s) => generate(s, count)));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const total = runs.reduce((n, r) => n + r.length, 0);
    process.stdout.write(JSON.stringify({tok_s: total / seconds}) + "\n");
  } else {
    throw new Error(`unknown mode ${mode}: greedy or decode`);
  }
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`llama_cpp.mjs: ${e.stack ?? e}\n`);
  process.exit(1);
});
