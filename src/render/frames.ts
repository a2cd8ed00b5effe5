// Length-prefixed JSON frames on a pipe: a 4-byte big-endian length, then that many bytes of
// UTF-8 JSON. The render process asks for templates this way because nunjucks loads templates
// synchronously: the render process writes a request and blocks reading the answer (it has
// nothing else to do), while keelson's main process reads and answers asynchronously.
import { readSync, writeSync } from 'node:fs';

const HEADER = 4;

/** The render process's end of the pipes (stdio slots 4 and 5, after stdin/out/err and IPC). */
export const REQUEST_FD = 4;
export const REPLY_FD = 5;

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, HEADER);
  return frame;
}

/** Collects frames from chunks of a stream; a frame longer than `maxBytes` is a protocol error. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): unknown[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: unknown[] = [];
    while (this.buffered.length >= HEADER) {
      const length = this.buffered.readUInt32BE(0);
      if (length > this.maxBytes) throw new Error(`a frame of ${length} bytes exceeds the ${this.maxBytes} allowed`);
      if (this.buffered.length < HEADER + length) break;
      messages.push(JSON.parse(this.buffered.toString('utf8', HEADER, HEADER + length)));
      this.buffered = this.buffered.subarray(HEADER + length);
    }
    return messages;
  }
}

/** Blocking write of one frame (render process side). */
export function writeFrameSync(fd: number, message: unknown): void {
  const frame = encodeFrame(message);
  let written = 0;
  while (written < frame.length) written += writeSync(fd, frame, written);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function readExactlySync(fd: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    let n: number;
    try {
      n = readSync(fd, buffer, read, length - read, null);
    } catch (error) {
      // a pipe handed over non-blocking: wait a millisecond instead of spinning
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      throw error;
    }
    if (n === 0) throw new Error('The main process closed the template channel.');
    read += n;
  }
  return buffer;
}

/** Blocking read of one frame (render process side). */
export function readFrameSync(fd: number): unknown {
  const length = readExactlySync(fd, HEADER).readUInt32BE(0);
  return JSON.parse(readExactlySync(fd, length).toString('utf8'));
}
