// Classify images with a zoo-exported ONNX file from Node.js, through onnxruntime-node.
//
//   node classify.mjs MODEL.onnx IMAGE... [--json] [--top K]
//
// Labels and preprocessing come from the file alone (its zoo card in ONNX metadata_props,
// zoo-card.mjs); pixels are prepared as zoo.preprocess prepares them (pixels.mjs).

import ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { readCard } from './zoo-card.mjs';
import { loadImage, normalize, toPixels } from './pixels.mjs';

const USAGE = 'usage: node classify.mjs MODEL.onnx IMAGE... [--json] [--top K]';

function parseArgs(argv) {
  const options = { json: false, top: 5, files: [] };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--json') options.json = true;
    else if (argv[i] === '--top') options.top = Number(argv[(i += 1)]);
    else if (argv[i].startsWith('--')) throw new Error(`unknown option ${argv[i]}; ${USAGE}`);
    else options.files.push(argv[i]);
  }
  if (options.files.length < 2) throw new Error(USAGE);
  if (!(Number.isInteger(options.top) && options.top >= 1)) throw new Error('--top takes a whole number of at least 1');
  return options;
}

async function openModel(path) {
  if (!existsSync(path)) throw new Error(`ONNX file '${path}' does not exist`);
  const card = readCard(path); // before the session: a clear message for files that are not zoo's
  let session;
  try {
    session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all' });
  } catch (error) {
    throw new Error(`onnxruntime cannot load '${path}': ${String(error.message).split('\n')[0]}`);
  }
  const input = session.inputMetadata[0];
  const batch = Number.isInteger(input.shape[0]) ? input.shape[0] : 1; // a --batch N export takes N images
  // `zoo export --embed-preprocessing`: uint8 NHWC pixels in, normalisation inside the graph
  const embedded = input.type === 'uint8';
  return { session, card, batch, embedded };
}

/** The graph's input for one image, repeated to the file's fixed batch size. */
function modelInput(model, pixels) {
  const { width, height, channels } = pixels;
  const one = model.embedded ? pixels.data : normalize(pixels, model.card);
  const data = new one.constructor(one.length * model.batch);
  for (let i = 0; i < model.batch; i += 1) data.set(one, i * one.length);
  const shape = model.embedded ? [model.batch, height, width, channels] : [model.batch, channels, height, width];
  return new ort.Tensor(model.embedded ? 'uint8' : 'float32', data, shape);
}

/** Softmax of one row of logits, in float64 (as zoo.prediction.softmax). */
function softmax(logits) {
  const top = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

async function classify(model, file, top) {
  let pixels;
  try {
    pixels = toPixels(loadImage(file), model.card);
  } catch (error) {
    throw new Error(`cannot read image '${file}': ${String(error.message ?? error).split('\n')[0]}`);
  }
  const { session, card } = model;
  const feeds = { [session.inputNames[0]]: modelInput(model, pixels) };
  const output = (await session.run(feeds))[session.outputNames[0]];
  if (output.dims.at(-1) !== card.labels.length) {
    throw new Error(`the model gives ${output.dims.at(-1)} scores but its card names ${card.labels.length} labels`);
  }
  const probabilities = softmax(output.data.subarray(0, card.labels.length));
  const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  const round = (p) => Math.round(p * 1e6) / 1e6;
  const [best, index] = order[0];
  return {
    label: card.labels[index],
    index,
    probability: round(best),
    top: order.slice(0, top).map(([p, i]) => ({ label: card.labels[i], probability: round(p) })),
    file,
    probabilities, // every class, unrounded
  };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const [modelPath, ...images] = options.files;
  const model = await openModel(modelPath);
  const results = [];
  for (const file of images) results.push(await classify(model, file, options.top));
  if (options.json) {
    console.log(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) console.log(`${r.file}: ${r.label} (${(100 * r.probability).toFixed(2)} %)`);
  }
}

main().catch((error) => {
  console.error(`classify: ${String(error.message ?? error).split('\n')[0]}`);
  process.exit(2);
});
