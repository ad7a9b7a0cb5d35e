// The subset of ZIP that PyTorch checkpoints use: stored (or, from other tools, deflated) entries,
// ZIP64 for archives and records past 4 GiB, no encryption, one disk. Reading goes through the
// central directory, because PyTorch's writer leaves the sizes in local headers zero (it streams
// with data descriptors). Writing aligns every record's data to 64 bytes with an "FB" padding
// extra field, as PyTorch's writer does, so that loaders can map tensor data in place.
import { fstatSync, readSync, writeSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import { crc32 } from "./crc32.js";
import { MocoError, type MocoErrorOptions } from "../../errors.js";

const LOCAL_HEADER_SIG = 0x04034b50;
const CENTRAL_HEADER_SIG = 0x02014b50;
const EOCD_SIG = 0x06054b50;
const EOCD64_SIG = 0x06064b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const EOCD64_SIZE = 56;
const EOCD64_LOCATOR_SIZE = 20;
const MAX_COMMENT = 0xffff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const ZIP64_EXTRA_ID = 0x0001;
const PADDING_EXTRA_ID = 0x4246; // "FB" little-endian, PyTorch's padding field
const DATA_ALIGNMENT = 64;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;
const DOS_DATE_1980_01_01 = 0x0021;
const MAX_READ_CHUNK = 1 << 30; // readSync/writeSync move at most ~2 GiB per call
/**
 * Deflate's best case turns 258 bytes of output into a few bits: zlib's ratio never exceeds about
 * 1032:1. An entry that declares more than that from its compressed size cannot be honest.
 */
const MAX_DEFLATE_RATIO = 1032;
const DEFLATE_SLACK = 1024;

/** An error in the archive itself; the message names the archive. */
export class ZipFormatError extends MocoError {
  override name = "ZipFormatError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_ZIP_FORMAT", message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Byte sources

/** Random access to an archive's bytes, so that a multi-gigabyte file is never read whole. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; the caller has checked the range. */
  read(offset: number, length: number): Uint8Array;
}

export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read: (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** A source over an open file descriptor; the caller closes it. */
export function fileSource(fd: number): ByteSource {
  const size = fstatSync(fd).size;
  return {
    size,
    read(offset, length) {
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, Math.min(length - done, MAX_READ_CHUNK), offset + done);
        if (n === 0) throw new Error(`file shrank while reading (offset ${offset + done})`);
        done += n;
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Little-endian field access

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(dv: DataView, at: number, what: string, label: string): number {
  const value = dv.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ZipFormatError(`${label}: ${what} ${value} is too large to be real`);
  }
  return Number(value);
}

// ---------------------------------------------------------------------------------------------
// Reader

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

interface EndRecord {
  entryCount: number;
  centralDirSize: number;
  centralDirOffset: number;
}

export class ZipReader {
  readonly entries: ReadonlyMap<string, ZipEntry>;

  private constructor(
    private readonly source: ByteSource,
    private readonly label: string,
    entries: Map<string, ZipEntry>,
  ) {
    this.entries = entries;
  }

  /** Parses the central directory. `label` (usually the file path) is named in every error. */
  static open(source: ByteSource, label: string): ZipReader {
    const end = findEndRecord(source, label);
    const entries = readCentralDirectory(source, end, label);
    return new ZipReader(source, label, entries);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's uncompressed bytes, CRC-checked; they may share memory with an in-memory source. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new ZipFormatError(`${this.label}: no record named '${name}' in the archive`);
    const dataStart = this.dataOffset(entry);
    const read = this.source.read(dataStart, entry.compressedSize);
    const raw = new Uint8Array(read.buffer, read.byteOffset, read.byteLength); // a plain view, even of a Buffer
    let data: Uint8Array;
    if (entry.method === METHOD_STORED) {
      if (entry.compressedSize !== entry.uncompressedSize) {
        throw new ZipFormatError(`${this.label}: stored record '${name}' has differing sizes`);
      }
      data = raw;
    } else if (entry.method === METHOD_DEFLATED) {
      if (entry.uncompressedSize > entry.compressedSize * MAX_DEFLATE_RATIO + DEFLATE_SLACK) {
        throw new ZipFormatError(
          `${this.label}: record '${name}' declares ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed ones, more than deflate can produce`,
        );
      }
      try {
        // Never more than the declared size (+1, to tell "more" from "exactly"): a zip bomb stops
        // at the size its directory declares instead of filling memory.
        const inflated = inflateRawSync(raw, { maxOutputLength: entry.uncompressedSize + 1 });
        data = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          throw new ZipFormatError(
            `${this.label}: record '${name}' inflates to more than the ${entry.uncompressedSize} bytes it declares`,
          );
        }
        throw new ZipFormatError(`${this.label}: record '${name}' does not inflate: ${(cause as Error).message}`);
      }
      if (data.length !== entry.uncompressedSize) {
        throw new ZipFormatError(
          `${this.label}: record '${name}' inflates to ${data.length} bytes, expected ${entry.uncompressedSize}`,
        );
      }
    } else {
      throw new ZipFormatError(
        `${this.label}: record '${name}' uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    const actual = crc32(data);
    if (actual !== entry.crc32) {
      throw new ZipFormatError(
        `${this.label}: record '${name}' is corrupt (CRC-32 ${hex(actual)}, expected ${hex(entry.crc32)})`,
      );
    }
    return data;
  }

  private dataOffset(entry: ZipEntry): number {
    const { source, label } = this;
    if (entry.localHeaderOffset + LOCAL_HEADER_SIZE > source.size) {
      throw new ZipFormatError(`${label}: truncated archive (local header of '${entry.name}' is past the end)`);
    }
    const header = view(source.read(entry.localHeaderOffset, LOCAL_HEADER_SIZE));
    if (header.getUint32(0, true) !== LOCAL_HEADER_SIG) {
      throw new ZipFormatError(`${label}: corrupt archive (bad local header for '${entry.name}')`);
    }
    const start = entry.localHeaderOffset + LOCAL_HEADER_SIZE + header.getUint16(26, true) + header.getUint16(28, true);
    if (start + entry.compressedSize > source.size) {
      throw new ZipFormatError(
        `${label}: truncated archive (record '${entry.name}' needs ${entry.compressedSize} bytes at ${start}, file has ${source.size})`,
      );
    }
    return start;
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

function startsLikeZip(source: ByteSource): boolean {
  return source.size >= 4 && view(source.read(0, 4)).getUint32(0, true) === LOCAL_HEADER_SIG;
}

function findEndRecord(source: ByteSource, label: string): EndRecord {
  if (source.size < EOCD_SIZE) {
    throw new ZipFormatError(
      startsLikeZip(source)
        ? `${label}: truncated zip archive (only ${source.size} bytes)`
        : `${label}: not a zip archive (${source.size} bytes is too short)`,
    );
  }
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = source.size - tailLength;
  const tail = source.read(tailStart, tailLength);
  const dv = view(tail);
  let at = -1;
  for (let p = tail.length - EOCD_SIZE; p >= 0; p--) {
    if (dv.getUint32(p, true) === EOCD_SIG && p + EOCD_SIZE + dv.getUint16(p + 20, true) <= tail.length) {
      at = p;
      break;
    }
  }
  if (at < 0) {
    throw new ZipFormatError(
      startsLikeZip(source)
        ? `${label}: truncated zip archive (it starts like one but has no end-of-central-directory record)`
        : `${label}: not a zip archive (no end-of-central-directory record)`,
    );
  }
  if (dv.getUint16(at + 4, true) !== 0 || dv.getUint16(at + 6, true) !== 0) {
    throw new ZipFormatError(`${label}: multi-disk zip archives are not supported`);
  }
  const end: EndRecord = {
    entryCount: dv.getUint16(at + 10, true),
    centralDirSize: dv.getUint32(at + 12, true),
    centralDirOffset: dv.getUint32(at + 16, true),
  };
  const eocdOffset = tailStart + at;
  const locatorOffset = eocdOffset - EOCD64_LOCATOR_SIZE;
  if (locatorOffset >= 0 && view(source.read(locatorOffset, 4)).getUint32(0, true) === EOCD64_LOCATOR_SIG) {
    const locator = view(source.read(locatorOffset, EOCD64_LOCATOR_SIZE));
    const eocd64Offset = u64(locator, 8, "ZIP64 end record offset", label);
    if (eocd64Offset + EOCD64_SIZE > locatorOffset) {
      throw new ZipFormatError(`${label}: corrupt archive (ZIP64 end record offset ${eocd64Offset} is out of range)`);
    }
    const eocd64 = view(source.read(eocd64Offset, EOCD64_SIZE));
    if (eocd64.getUint32(0, true) !== EOCD64_SIG) {
      throw new ZipFormatError(`${label}: corrupt archive (bad ZIP64 end-of-central-directory record)`);
    }
    end.entryCount = u64(eocd64, 32, "entry count", label);
    end.centralDirSize = u64(eocd64, 40, "central directory size", label);
    end.centralDirOffset = u64(eocd64, 48, "central directory offset", label);
  } else if (end.entryCount === U16_MAX || end.centralDirSize === U32_MAX || end.centralDirOffset === U32_MAX) {
    throw new ZipFormatError(`${label}: truncated or corrupt ZIP64 archive (the ZIP64 end record locator is missing)`);
  }
  if (end.centralDirOffset + end.centralDirSize > eocdOffset) {
    throw new ZipFormatError(
      `${label}: truncated or corrupt archive (central directory at ${end.centralDirOffset}+${end.centralDirSize} overlaps the end record at ${eocdOffset})`,
    );
  }
  return end;
}

function readCentralDirectory(source: ByteSource, end: EndRecord, label: string): Map<string, ZipEntry> {
  const bytes = source.read(end.centralDirOffset, end.centralDirSize);
  const dv = view(bytes);
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < end.entryCount; i++) {
    if (p + CENTRAL_HEADER_SIZE > bytes.length || dv.getUint32(p, true) !== CENTRAL_HEADER_SIG) {
      throw new ZipFormatError(`${label}: corrupt archive (central directory entry ${i} is malformed)`);
    }
    const flags = dv.getUint16(p + 8, true);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    const next = p + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (next > bytes.length) {
      throw new ZipFormatError(`${label}: corrupt archive (central directory entry ${i} runs past its end)`);
    }
    const name = decoder.decode(bytes.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLength));
    if (flags & FLAG_ENCRYPTED) throw new ZipFormatError(`${label}: record '${name}' is encrypted`);
    let uncompressedSize = dv.getUint32(p + 24, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const needs = {
      uncompressed: uncompressedSize === U32_MAX,
      compressed: compressedSize === U32_MAX,
      offset: localHeaderOffset === U32_MAX,
    };
    if (needs.uncompressed || needs.compressed || needs.offset) {
      const zip64 = findExtra(bytes, p + CENTRAL_HEADER_SIZE + nameLength, extraLength, ZIP64_EXTRA_ID);
      if (zip64 === undefined) {
        throw new ZipFormatError(`${label}: corrupt archive ('${name}' lacks its ZIP64 extra field)`);
      }
      const z = view(zip64);
      let q = 0;
      const take = (what: string): number => {
        if (q + 8 > zip64.length) throw new ZipFormatError(`${label}: corrupt ZIP64 extra field for '${name}'`);
        const value = u64(z, q, what, label);
        q += 8;
        return value;
      };
      if (needs.uncompressed) uncompressedSize = take("uncompressed size");
      if (needs.compressed) compressedSize = take("compressed size");
      if (needs.offset) localHeaderOffset = take("local header offset");
    }
    // torch.load's reader (miniz) finds the first of two records with one name, a plain map the
    // last: the two would read different weights from one file. PyTorch's writer never repeats one.
    if (entries.has(name)) throw new ZipFormatError(`${label}: corrupt archive (two records named '${name}')`);
    entries.set(name, {
      name,
      method: dv.getUint16(p + 10, true),
      crc32: dv.getUint32(p + 16, true),
      compressedSize,
      uncompressedSize,
      localHeaderOffset,
    });
    p = next;
  }
  return entries;
}

function findExtra(bytes: Uint8Array, start: number, length: number, id: number): Uint8Array | undefined {
  const dv = view(bytes);
  let p = start;
  while (p + 4 <= start + length) {
    const fieldId = dv.getUint16(p, true);
    const size = dv.getUint16(p + 2, true);
    if (p + 4 + size > start + length) return undefined;
    if (fieldId === id) return bytes.subarray(p + 4, p + 4 + size);
    p += 4 + size;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Writer

/** Where a writer's bytes go, in order. */
export interface ByteSink {
  write(chunk: Uint8Array): void;
}

export class MemorySink implements ByteSink {
  private readonly chunks: Uint8Array[] = [];
  /** Keeps a reference: the writer never reuses a chunk it has handed over. */
  write(chunk: Uint8Array): void {
    this.chunks.push(chunk);
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

/** Writes to a file descriptor that the caller opened and closes. */
export class FileSink implements ByteSink {
  constructor(private readonly fd: number) {}
  write(chunk: Uint8Array): void {
    let done = 0;
    while (done < chunk.length) {
      done += writeSync(this.fd, chunk, done, Math.min(chunk.length - done, MAX_READ_CHUNK));
    }
  }
}

export interface ZipWriterOptions {
  /** "always" writes ZIP64 fields even for small archives (used by tests); default "auto". */
  readonly zip64?: "auto" | "always";
}

interface WrittenEntry {
  readonly name: Uint8Array;
  readonly crc32: number;
  readonly size: number;
  readonly offset: number;
}

export class ZipWriter {
  private cursor = 0;
  private readonly written: WrittenEntry[] = [];
  private readonly names = new Set<string>();
  private finished = false;
  private readonly alwaysZip64: boolean;

  constructor(
    private readonly sink: ByteSink,
    options: ZipWriterOptions = {},
  ) {
    this.alwaysZip64 = options.zip64 === "always";
  }

  /** Appends one stored record whose data starts on a 64-byte boundary. */
  add(name: string, data: Uint8Array): void {
    if (this.finished) throw new Error(`zip writer: add('${name}') after finish()`);
    if (this.names.has(name)) throw new Error(`zip writer: duplicate record name '${name}'`);
    this.names.add(name);
    const encodedName = new TextEncoder().encode(name);
    if (encodedName.length > U16_MAX) throw new Error(`zip writer: record name is too long`);
    const offset = this.cursor;
    const sizeNeedsZip64 = this.alwaysZip64 || data.length >= U32_MAX;
    const zip64Extra = sizeNeedsZip64 ? extraField(ZIP64_EXTRA_ID, u64Fields([data.length, data.length])) : EMPTY;
    const unpadded = offset + LOCAL_HEADER_SIZE + encodedName.length + zip64Extra.length + 4;
    const padding = (DATA_ALIGNMENT - (unpadded % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
    const paddingExtra = extraField(PADDING_EXTRA_ID, new Uint8Array(padding).fill(0x5a)); // 'Z', as PyTorch
    const checksum = crc32(data);

    const header = new Uint8Array(LOCAL_HEADER_SIZE);
    const h = view(header);
    h.setUint32(0, LOCAL_HEADER_SIG, true);
    h.setUint16(4, sizeNeedsZip64 ? 45 : 20, true);
    h.setUint16(6, FLAG_UTF8, true);
    h.setUint16(8, METHOD_STORED, true);
    h.setUint16(10, 0, true);
    h.setUint16(12, DOS_DATE_1980_01_01, true);
    h.setUint32(14, checksum, true);
    h.setUint32(18, sizeNeedsZip64 ? U32_MAX : data.length, true);
    h.setUint32(22, sizeNeedsZip64 ? U32_MAX : data.length, true);
    h.setUint16(26, encodedName.length, true);
    h.setUint16(28, zip64Extra.length + paddingExtra.length, true);
    this.emit(header);
    this.emit(encodedName);
    this.emit(zip64Extra);
    this.emit(paddingExtra);
    this.emit(data);
    this.written.push({ name: encodedName, crc32: checksum, size: data.length, offset });
  }

  /** Writes the central directory and end records. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const centralDirOffset = this.cursor;
    for (const entry of this.written) this.emit(centralHeader(entry, this.alwaysZip64));
    const centralDirSize = this.cursor - centralDirOffset;
    const count = this.written.length;
    const needsZip64 = this.alwaysZip64 || count >= U16_MAX || centralDirOffset >= U32_MAX || centralDirSize >= U32_MAX;
    if (needsZip64) {
      const eocd64Offset = this.cursor;
      const eocd64 = new Uint8Array(EOCD64_SIZE);
      const e = view(eocd64);
      e.setUint32(0, EOCD64_SIG, true);
      e.setBigUint64(4, BigInt(EOCD64_SIZE - 12), true);
      e.setUint16(12, 45, true);
      e.setUint16(14, 45, true);
      e.setBigUint64(24, BigInt(count), true);
      e.setBigUint64(32, BigInt(count), true);
      e.setBigUint64(40, BigInt(centralDirSize), true);
      e.setBigUint64(48, BigInt(centralDirOffset), true);
      this.emit(eocd64);
      const locator = new Uint8Array(EOCD64_LOCATOR_SIZE);
      const l = view(locator);
      l.setUint32(0, EOCD64_LOCATOR_SIG, true);
      l.setBigUint64(8, BigInt(eocd64Offset), true);
      l.setUint32(16, 1, true);
      this.emit(locator);
    }
    const eocd = new Uint8Array(EOCD_SIZE);
    const d = view(eocd);
    d.setUint32(0, EOCD_SIG, true);
    d.setUint16(8, needsZip64 ? U16_MAX : count, true);
    d.setUint16(10, needsZip64 ? U16_MAX : count, true);
    d.setUint32(12, needsZip64 ? U32_MAX : centralDirSize, true);
    d.setUint32(16, needsZip64 ? U32_MAX : centralDirOffset, true);
    this.emit(eocd);
  }

  private emit(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.sink.write(chunk);
    this.cursor += chunk.length;
  }
}

const EMPTY = new Uint8Array(0);

function extraField(id: number, body: Uint8Array): Uint8Array {
  const field = new Uint8Array(4 + body.length);
  const f = view(field);
  f.setUint16(0, id, true);
  f.setUint16(2, body.length, true);
  field.set(body, 4);
  return field;
}

function u64Fields(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 * values.length);
  const o = view(out);
  values.forEach((value, i) => o.setBigUint64(8 * i, BigInt(value), true));
  return out;
}

function centralHeader(entry: WrittenEntry, alwaysZip64: boolean): Uint8Array {
  const sizeInZip64 = alwaysZip64 || entry.size >= U32_MAX;
  const offsetInZip64 = alwaysZip64 || entry.offset >= U32_MAX;
  const zip64Values = [...(sizeInZip64 ? [entry.size, entry.size] : []), ...(offsetInZip64 ? [entry.offset] : [])];
  const zip64Extra = zip64Values.length > 0 ? extraField(ZIP64_EXTRA_ID, u64Fields(zip64Values)) : EMPTY;
  const header = new Uint8Array(CENTRAL_HEADER_SIZE + entry.name.length + zip64Extra.length);
  const h = view(header);
  const version = zip64Extra.length > 0 ? 45 : 20;
  h.setUint32(0, CENTRAL_HEADER_SIG, true);
  h.setUint16(4, version, true);
  h.setUint16(6, version, true);
  h.setUint16(8, FLAG_UTF8, true);
  h.setUint16(10, METHOD_STORED, true);
  h.setUint16(12, 0, true);
  h.setUint16(14, DOS_DATE_1980_01_01, true);
  h.setUint32(16, entry.crc32, true);
  h.setUint32(20, sizeInZip64 ? U32_MAX : entry.size, true);
  h.setUint32(24, sizeInZip64 ? U32_MAX : entry.size, true);
  h.setUint16(28, entry.name.length, true);
  h.setUint16(30, zip64Extra.length, true);
  h.setUint32(42, offsetInZip64 ? U32_MAX : entry.offset, true);
  header.set(entry.name, CENTRAL_HEADER_SIZE);
  header.set(zip64Extra, CENTRAL_HEADER_SIZE + entry.name.length);
  return header;
}
