// Photographs of documents for uploads: small PNGs, different for every seed (a white page
// with lines of "text" placed by the seed), written to temporary files as `wx.chooseMedia`
// would leave them.
import { deflateSync } from 'node:zlib';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A grey-scale PNG of a page of "text", laid out by `seed`. */
export function documentPng(seed, width = 240, height = 320) {
  let state = (seed * 2654435761 + 12345) >>> 0;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  const pixels = Buffer.alloc(width * height, 250);
  for (let y = 16; y < height - 16; y += 14) {
    let x = 12 + Math.floor(random() * 30);
    while (x < width - 20) {
      const word = 8 + Math.floor(random() * 40);
      const ink = Math.floor(random() * 80);
      for (let yy = y; yy < y + 8; yy++) for (let xx = x; xx < Math.min(x + word, width - 12); xx++) pixels[yy * width + xx] = ink;
      x += word + 6 + Math.floor(random() * 10);
    }
  }
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) pixels.copy(raw, y * (width + 1) + 1, y * width, (y + 1) * width);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grey-scale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const dir = mkdtempSync(join(tmpdir(), 'huzhu-photos-'));

/** A temporary file holding a photo of a document (the `tempFilePath` of wx.chooseMedia). */
export function photoFile(seed) {
  const path = join(dir, `photo-${seed}.png`);
  writeFileSync(path, documentPng(seed));
  return path;
}

/** A temporary file with `contents` (e.g. the bank's result CSV). */
export function textFile(name, contents) {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}
