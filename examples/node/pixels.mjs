// zoo's preprocessing (zoo/preprocess.py) in JavaScript: decode, turn upright, convert to gray
// or RGB, resize (squash, or timm's center-crop), normalise. Every step repeats what Pillow
// does, roundings included, so the pixels fed to the model equal zoo.runtime's for PNG files
// (JPEG decoders differ by a level here and there: jpeg-js is not libjpeg-turbo).

import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';

/** An image: `channels` interleaved uint8 samples a pixel (4: RGBA as decoded, 1 or 3 later). */
function image(width, height, channels, data) {
  return { width, height, channels, data: data ?? new Uint8Array(width * height * channels) };
}

// -- decoding -------------------------------------------------------------------------------

/** Pixel limit from the file's header, before decoding: ZOO_MAX_IMAGE_PIXELS as zoo reads it. */
function pixelLimit() {
  const raw = (process.env.ZOO_MAX_IMAGE_PIXELS ?? '').trim().toLowerCase();
  if (!raw) return 100_000_000;
  if (raw === 'none' || raw === '0') return Infinity;
  const limit = Number(raw.replaceAll(',', '').replaceAll('_', ''));
  if (!(limit > 0)) throw new Error(`ZOO_MAX_IMAGE_PIXELS must be a number of pixels, 0 or none, not '${raw}'`);
  return limit;
}

/** Decode a PNG or JPEG file to RGBA, upright (EXIF orientation applied, as zoo.preprocess.open_image). */
export function loadImage(path) {
  const bytes = readFileSync(path);
  const limit = pixelLimit();
  let decoded;
  let composite;
  if (bytes.subarray(1, 4).toString('latin1') === 'PNG') {
    const [width, height] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
    if (width * height > limit) throw new Error(`'${path}' has ${width * height} pixels, over the limit of ${limit}`);
    const png = pngjs.PNG.sync.read(bytes);
    decoded = image(png.width, png.height, 4, png.data);
    // Pillow composites over black only modes with alpha (LA, RGBA) and palettes with tRNS;
    // a gray or RGB PNG's tRNS colour stays as it is (pngjs turns it into alpha 0)
    composite = png.colorType === 4 || png.colorType === 6 || (png.colorType === 3 && png.alpha);
    decoded.exif = pngExif(bytes);
  } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const jpg = jpeg.decode(bytes, { useTArray: true, maxResolutionInMP: limit / 1e6, maxMemoryUsageInMB: 4096 });
    decoded = image(jpg.width, jpg.height, 4, jpg.data);
    composite = false;
    decoded.exif = jpg.exifBuffer?.subarray(1); // jpeg-js keeps one of "Exif\0\0"'s zeros
  } else {
    throw new Error(`'${path}' is not a PNG or JPEG file`);
  }
  return upright(composite ? overBlack(decoded) : decoded, orientation(decoded.exif));
}

/** The eXIf chunk's TIFF block (Pillow reads a PNG's EXIF from it). */
function pngExif(bytes) {
  for (let at = 8; at + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (type === 'eXIf') return bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IDAT' || type === 'IEND') return undefined;
    at += 12 + length;
  }
  return undefined;
}

/** EXIF orientation (tag 0x0112 in IFD0), 1 when absent or unreadable. */
function orientation(tiff) {
  try {
    const little = tiff.toString('latin1', 0, 2) === 'II';
    const u16 = (at) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
    const u32 = (at) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
    const ifd = u32(4);
    for (let i = 0; i < u16(ifd); i += 1) {
      const entry = ifd + 2 + 12 * i;
      if (u16(entry) === 0x0112) return u16(entry + 8);
    }
  } catch {
    // no EXIF block, or a damaged one: the image as stored
  }
  return 1;
}

/** Pillow's ImageOps.exif_transpose for orientations 2-8. */
function upright(img, turn) {
  if (!(turn >= 2 && turn <= 8)) return img;
  const { width: w, height: h, channels: c } = img;
  const swap = turn >= 5;
  const out = image(swap ? h : w, swap ? w : h, c);
  const source = {
    2: (x, y) => [w - 1 - x, y], 3: (x, y) => [w - 1 - x, h - 1 - y], 4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x], 6: (x, y) => [y, h - 1 - x], 7: (x, y) => [w - 1 - y, h - 1 - x], 8: (x, y) => [w - 1 - y, x],
  }[turn];
  for (let y = 0; y < out.height; y += 1) {
    for (let x = 0; x < out.width; x += 1) {
      const [sx, sy] = source(x, y);
      out.data.set(img.data.subarray((sy * w + sx) * c, (sy * w + sx + 1) * c), (y * out.width + x) * c);
    }
  }
  return out;
}

/** Pillow's alpha_composite over opaque black (zoo.preprocess.to_rgb_or_gray), integer maths included. */
function overBlack(img) {
  const { data } = img;
  for (let i = 0; i < data.length; i += 4) {
    const alpha = data[i + 3];
    for (let c = 0; c < 3; c += 1) {
      const t = data[i + c] * alpha * 128 + 16384;
      data[i + c] = alpha === 0 ? 0 : (((t >> 8) + t) >> 8) >> 7;
    }
    data[i + 3] = 255;
  }
  return img;
}

/** RGBA -> L (Pillow's ITU-R 601 integer weights) or RGB. */
function grayOrRgb(img, channels) {
  const out = image(img.width, img.height, channels);
  for (let p = 0, i = 0; i < img.data.length; p += 1, i += 4) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    if (channels === 1) out.data[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    else out.data.set([r, g, b], p * 3);
  }
  return out;
}

// -- resizing: Pillow's Image.resize (libImaging/Resample.c, Geometry.c) ---------------------

const PRECISION_BITS = 22; // Pillow's fixed point for 8-bit images
const FILTERS = {
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      return t < 2 ? (((t - 5) * t + 8) * t - 4) * a : 0;
    },
  },
};

/** `image.resize((width, height), filter, box)`; box values are C floats in Pillow. */
export function resize(img, width, height, interpolation, box = [0, 0, img.width, img.height]) {
  const [x0, y0, x1, y1] = box.map(Math.fround);
  if (interpolation === 'nearest') return nearest(img, width, height, [x0, y0, x1, y1]);
  const filter = FILTERS[interpolation];
  const horizontal = coefficients(img.width, x0, x1, width, filter);
  const vertical = coefficients(img.height, y0, y1, height, filter);
  const needX = width !== img.width || x0 !== 0 || x1 !== width;
  const needY = height !== img.height || y0 !== 0 || y1 !== height;
  // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height
  // shrinks by more than twice as many pixels as the width; the order changes the roundings
  if (needX && needY && height < img.height && img.height - height > 2 * (img.width - width)) {
    return passX(passY(img, vertical), horizontal, 0, height);
  }
  let out = img;
  if (needX) { // only the source rows the vertical pass reads
    const first = vertical.bounds[0];
    const last = vertical.bounds[2 * height - 2] + vertical.bounds[2 * height - 1];
    for (let i = 0; i < height; i += 1) vertical.bounds[2 * i] -= first;
    out = passX(out, horizontal, first, last - first);
  }
  if (needY) out = passY(out, vertical);
  return out === img ? image(img.width, img.height, img.channels, img.data.slice()) : out;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: bounds and fixed-point weights per output pixel. */
function coefficients(inSize, in0, in1, outSize, filter) {
  const scale = Math.fround(in1 - in0) / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * size);
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = in0 + (xx + 0.5) * scale;
    const min = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - min;
    const raw = [];
    for (let x = 0; x < count; x += 1) raw.push(filter.weight((x + min - center + 0.5) * (1 / filterScale)));
    const total = raw.reduce((sum, w) => sum + w, 0);
    raw.forEach((w, x) => {
      const k = total !== 0 ? w / total : w;
      weights[xx * size + x] = Math.trunc(k < 0 ? -0.5 + k * 2 ** PRECISION_BITS : 0.5 + k * 2 ** PRECISION_BITS);
    });
    bounds[2 * xx] = min;
    bounds[2 * xx + 1] = count;
  }
  return { bounds, weights, size, outSize };
}

/** Pillow's clip8: the fixed-point sum back to 0..255. */
function clip8(sum) {
  return Math.min(255, Math.max(0, Math.floor(sum / 2 ** PRECISION_BITS)));
}

/** Horizontal pass over `rows` source rows from `firstRow` (ImagingResampleHorizontal_8bpc). */
function passX(img, { bounds, weights, size, outSize }, firstRow, rows) {
  const c = img.channels;
  const out = image(outSize, rows, c);
  for (let y = 0; y < rows; y += 1) {
    const row = (y + firstRow) * img.width;
    for (let x = 0; x < outSize; x += 1) {
      const [min, count] = [bounds[2 * x], bounds[2 * x + 1]];
      for (let ch = 0; ch < c; ch += 1) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < count; k += 1) sum += img.data[(row + min + k) * c + ch] * weights[x * size + k];
        out.data[(y * outSize + x) * c + ch] = clip8(sum);
      }
    }
  }
  return out;
}

/** Vertical pass (ImagingResampleVertical_8bpc). */
function passY(img, { bounds, weights, size, outSize }) {
  const c = img.channels;
  const out = image(img.width, outSize, c);
  for (let y = 0; y < outSize; y += 1) {
    const [min, count] = [bounds[2 * y], bounds[2 * y + 1]];
    for (let x = 0; x < img.width * c; x += 1) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < count; k += 1) sum += img.data[(min + k) * img.width * c + x] * weights[y * size + k];
      out.data[y * img.width * c + x] = clip8(sum);
    }
  }
  return out;
}

/** Pillow's NEAREST resize: an affine scale, positions accumulated as Pillow accumulates them. */
function nearest(img, width, height, [x0, y0, x1, y1]) {
  const out = image(width, height, img.channels);
  const [ax, ay] = [Math.fround(x1 - x0) / width, Math.fround(y1 - y0) / height];
  const columns = [];
  for (let x = 0, xo = x0 + ax * 0.5; x < width; x += 1, xo += ax) columns.push(Math.trunc(xo));
  for (let y = 0, yo = y0 + ay * 0.5; y < height; y += 1, yo += ay) {
    const sy = Math.trunc(yo);
    columns.forEach((sx, x) => {
      const from = (sy * img.width + sx) * img.channels;
      out.data.set(img.data.subarray(from, from + img.channels), (y * width + x) * img.channels);
    });
  }
  return out;
}

// -- the model's input ----------------------------------------------------------------------

/** Python's round(): half to even. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** zoo.preprocess.to_pixels: uint8 height x width x channels at the model's size. */
export function toPixels(img, card) {
  let out = grayOrRgb(img, card.channels);
  const [height, width] = card.inputSize;
  if (card.resizeMode === 'center-crop') return resizeAndCrop(out, card);
  if (out.width !== width || out.height !== height) out = resize(out, width, height, card.interpolation);
  return out;
}

/** timm's eval transform (zoo.preprocess._eval_resize_crop), same roundings. */
function resizeAndCrop(img, card) {
  const [height, width] = card.inputSize;
  const scaleH = Math.max(1, Math.floor(height / card.cropPct));
  const scaleW = Math.max(1, Math.floor(width / card.cropPct));
  let fill = Array(card.channels).fill(0);
  let size;
  if (card.cropMode === 'squash') {
    size = [scaleW, scaleH];
  } else if (card.cropMode === 'border') {
    const ratio = Math.max(img.height / scaleH, img.width / scaleW);
    size = [Math.max(1, roundHalfEven(img.width / ratio)), Math.max(1, roundHalfEven(img.height / ratio))];
    fill = card.mean.map((m) => roundHalfEven(255 * m));
  } else if (scaleH === scaleW) {
    const [short, long] = [Math.min(img.width, img.height), Math.max(img.width, img.height)];
    const newLong = Math.trunc((scaleH * long) / short);
    size = img.width <= img.height ? [scaleH, newLong] : [newLong, scaleH];
  } else {
    const ratio = Math.min(img.height / scaleH, img.width / scaleW);
    size = [Math.max(1, roundHalfEven(img.width / ratio)), Math.max(1, roundHalfEven(img.height / ratio))];
  }
  let out = img;
  if (img.width !== size[0] || img.height !== size[1]) out = resizeThenCrop(img, size, [width, height], card.interpolation);
  return centerCropOrPad(out, height, width, fill);
}

/** zoo.preprocess._resize_then_crop: past 4x the crop's area, resize only the region kept. */
function resizeThenCrop(img, [newW, newH], [cropW, cropH], interpolation) {
  if (newW * newH <= 4 * cropW * cropH) return resize(img, newW, newH, interpolation);
  const [keepW, keepH] = [Math.min(cropW, newW), Math.min(cropH, newH)];
  const left = roundHalfEven((newW - keepW) / 2);
  const top = roundHalfEven((newH - keepH) / 2);
  const [sw, sh] = [img.width / newW, img.height / newH];
  return resize(img, keepW, keepH, interpolation, [left * sw, top * sh, (left + keepW) * sw, (top + keepH) * sh]);
}

/** torchvision's center_crop: pad (odd pixel right and bottom), then crop at half-even offsets. */
function centerCropOrPad(img, height, width, fill) {
  let out = img;
  const c = img.channels;
  if (width > img.width || height > img.height) {
    const [left, top] = [Math.max(0, (width - img.width) >> 1), Math.max(0, (height - img.height) >> 1)];
    out = image(Math.max(width, img.width), Math.max(height, img.height), c);
    for (let p = 0; p < out.width * out.height; p += 1) out.data.set(fill, p * c);
    for (let y = 0; y < img.height; y += 1) {
      out.data.set(img.data.subarray(y * img.width * c, (y + 1) * img.width * c), ((y + top) * out.width + left) * c);
    }
  }
  if (out.width === width && out.height === height) return out;
  const top = roundHalfEven((out.height - height) / 2);
  const left = roundHalfEven((out.width - width) / 2);
  const crop = image(width, height, c);
  for (let y = 0; y < height; y += 1) {
    const from = ((y + top) * out.width + left) * c;
    crop.data.set(out.data.subarray(from, from + width * c), y * width * c);
  }
  return crop;
}

/** zoo.preprocess.normalize: float32 `(x / 255 - mean) / std`, NCHW, each step rounded to float32 as numpy does. */
export function normalize(pixels, card) {
  const { width, height, channels: c, data } = pixels;
  const out = new Float32Array(width * height * c);
  const mean = card.mean.map(Math.fround);
  const std = card.std.map(Math.fround);
  for (let ch = 0; ch < c; ch += 1) {
    for (let p = 0; p < width * height; p += 1) {
      out[ch * width * height + p] = Math.fround(Math.fround(data[p * c + ch] / 255) - mean[ch]) / std[ch];
    }
  }
  return out;
}
