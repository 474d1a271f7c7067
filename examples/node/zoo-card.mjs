// The zoo model card an exported .onnx file carries in its ONNX `metadata_props`.
//
// onnxruntime-node (1.30) has no model-metadata API: its InferenceSession exposes input and
// output metadata only (microsoft/onnxruntime#16547), not Python's `custom_metadata_map`.
// So this reads the file's protobuf directly. Only three field numbers of onnx.proto matter:
// ModelProto.metadata_props = 14, StringStringEntryProto.key = 1 and .value = 2. The walk
// reads field headers at file offsets and skips everything else (the graph and its weights)
// without loading it, so a large model costs a few small reads.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const CARD_FORMAT = 'zoo-card/1';

const METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const CHOICES = {
  interpolation: ['nearest', 'bilinear', 'bicubic'],
  resize_mode: ['squash', 'center-crop'],
  crop_mode: ['center', 'squash', 'border'],
};

/** An error whose message is the one line the user sees. */
export class ZooCardError extends Error {}

/** The file's `metadata_props` as a plain object (key -> string). */
export function readMetadataProps(path) {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const read = (position, length) => {
      const buffer = Buffer.alloc(length);
      const got = readSync(fd, buffer, 0, length, position);
      return buffer.subarray(0, got);
    };
    const props = {};
    for (const { field, start, end } of fields(read, 0, size)) {
      if (field === METADATA_PROPS) {
        const entry = read(start, end - start);
        const { key, value } = stringPair(entry);
        props[key] = value;
      }
    }
    return props;
  } finally {
    closeSync(fd);
  }
}

/** The card of a zoo-exported file: labels and preprocessing, checked; throws ZooCardError. */
export function readCard(path) {
  const props = readMetadataProps(path);
  if (!('format' in props)) {
    throw new ZooCardError(`'${path}' carries no zoo model card (no 'format' in its ONNX metadata_props): `
      + 'export the model with `zoo export`');
  }
  if (props.format !== CARD_FORMAT) {
    throw new ZooCardError(`'${path}' has card format '${props.format}', this reader knows ${CARD_FORMAT} only`);
  }
  const json = (key) => {
    if (!(key in props)) throw new ZooCardError(`'${path}': damaged zoo card, no '${key}'`);
    try {
      return JSON.parse(props[key]);
    } catch {
      throw new ZooCardError(`'${path}': damaged zoo card, '${key}' is not JSON`);
    }
  };
  const card = {
    name: props.name,
    numClasses: json('num_classes'),
    labels: json('labels'),
    inputSize: json('input_size'), // [height, width]
    channels: json('channels'),
    mean: json('mean'),
    std: json('std'),
    // keys with defaults, as zoo's ModelCard has them
    interpolation: props.interpolation ?? 'bilinear',
    resizeMode: props.resize_mode ?? 'squash',
    cropPct: 'crop_pct' in props ? json('crop_pct') : 0.875,
    cropMode: props.crop_mode ?? 'center',
  };
  check(card, path);
  if (card.labels.length === 0) card.labels = Array.from({ length: card.numClasses }, (_, i) => String(i));
  return card;
}

function check(card, path) {
  const fail = (what) => { throw new ZooCardError(`'${path}': damaged zoo card, ${what}`); };
  const isCount = (v, most) => Number.isInteger(v) && v >= 1 && v <= most;
  if (!isCount(card.numClasses, 100000)) fail(`num_classes ${card.numClasses}`);
  if (!Array.isArray(card.labels) || !card.labels.every((l) => typeof l === 'string')) fail('labels are not strings');
  if (card.labels.length && card.labels.length !== card.numClasses) fail(`${card.labels.length} labels for ${card.numClasses} classes`);
  if (!Array.isArray(card.inputSize) || card.inputSize.length !== 2 || !card.inputSize.every((v) => isCount(v, 8192))) {
    fail(`input_size ${JSON.stringify(card.inputSize)}`);
  }
  if (card.channels !== 1 && card.channels !== 3) fail(`channels ${card.channels}`);
  for (const key of ['mean', 'std']) {
    const values = card[key];
    if (!Array.isArray(values) || ![1, card.channels].includes(values.length) || !values.every(Number.isFinite)) {
      fail(`${key} ${JSON.stringify(values)}`);
    }
    if (values.length === 1) card[key] = Array(card.channels).fill(values[0]);
  }
  if (!card.std.every((s) => s > 0)) fail(`std ${JSON.stringify(card.std)}`);
  if (!(card.cropPct >= 0.5 && card.cropPct <= 2)) fail(`crop_pct ${card.cropPct}`);
  for (const [key, value] of [['interpolation', card.interpolation], ['resize_mode', card.resizeMode],
    ['crop_mode', card.cropMode]]) {
    if (!CHOICES[key].includes(value)) fail(`${key} '${value}' (this reader knows ${CHOICES[key].join(', ')})`);
  }
}

// -- protobuf wire format: varints and length-delimited fields ------------------------------

/** The top-level fields between `start` and `end`: {field, start, end} of each length-delimited one. */
function* fields(read, start, end) {
  let position = start;
  while (position < end) {
    const [tag, afterTag] = varint(read, position);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    position = afterTag;
    if (wire === 0) {
      position = varint(read, position)[1];
    } else if (wire === 1 || wire === 5) {
      position += wire === 1 ? 8 : 4;
    } else if (wire === 2) {
      const [length, body] = varint(read, position);
      position = body + length;
      if (position <= end) yield { field, start: body, end: position };
    } else {
      throw new ZooCardError(`not an ONNX model file (protobuf wire type ${wire} at byte ${afterTag})`);
    }
  }
  if (position !== end) throw new ZooCardError('not an ONNX model file (truncated protobuf)');
}

function varint(read, position) {
  const bytes = read(position, 10);
  let value = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    value += (bytes[i] & 0x7f) * 2 ** (7 * i);
    if (bytes[i] < 0x80) return [value, position + i + 1];
  }
  throw new ZooCardError('not an ONNX model file (truncated varint)');
}

function stringPair(entry) {
  const read = (position, length) => entry.subarray(position, position + length);
  const pair = { key: '', value: '' };
  for (const { field, start, end } of fields(read, 0, entry.length)) {
    if (field === ENTRY_KEY) pair.key = entry.toString('utf8', start, end);
    if (field === ENTRY_VALUE) pair.value = entry.toString('utf8', start, end);
  }
  return pair;
}
