/** Framing parsers (unit tests; the serial tests run the same parsers over a real pty). */
import { describe, expect, it } from 'vitest';
import { BinaryFrameParser, crc16, encodeFrame, type FrameChunk } from '../../src/devices/framing/binary.js';
import { LineParser, type LineChunk } from '../../src/devices/framing/delimiter.js';
import { LineFormatParser } from '../../src/devices/framing/line-format.js';

function run<T>(parser: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<T[]> {
  const out: T[] = [];
  parser.on('data', (c: T) => out.push(c));
  return new Promise((resolve) => {
    parser.on('end', () => resolve(out));
    for (const c of chunks) parser.write(c);
    parser.end();
  });
}

describe('LineParser', () => {
  it('splits LF and CRLF across chunk boundaries; counts overlong and partial lines', async () => {
    const out = await run<LineChunk>(new LineParser({ maxLength: 10 }), [
      Buffer.from('1.5\r\n2.'),
      Buffer.from('5\n'),
      Buffer.from('x'.repeat(30) + '\n3\n'),
      Buffer.from('4'),
    ]);
    expect(out).toMatchObject([
      { line: '1.5' },
      { line: '2.5' },
      { drop: { reason: 'overlong' } },
      { line: '3' },
      { drop: { reason: 'malformed', detail: 'partial line at end of stream' } },
    ]);
    // An overlong line split over chunks is dropped once, and the parser resynchronises.
    const split = await run<LineChunk>(new LineParser({ maxLength: 10 }), [Buffer.from('y'.repeat(15)), Buffer.from('y'.repeat(15) + '\n7\n')]);
    expect(split).toEqual([{ drop: { reason: 'overlong', detail: 'line longer than 10 bytes' } }, { line: '7' }]);
  });

  it('rejects bad options with the option named', () => {
    expect(() => new LineParser({ maxLength: 0 })).toThrow(/'maxLength' must be a positive integer/);
  });
});

describe('LineFormatParser', () => {
  it('csv with a header, columns by name, stream and time columns, gaps as NaN', () => {
    const p = new LineFormatParser({ format: 'csv', columns: ['ax', 'az'], streamColumn: 'id', timeColumn: 't', timeUnit: 's', header: 'auto' });
    expect(p.parse('t,id,ax,ay,az', 0)).toEqual({ header: true });
    expect(p.parse('1.5,imu7,0.1,0.2,9.8', 0)).toEqual({ reading: { stream: 'imu7', values: [0.1, 9.8], t: 1500 } });
    const gap = p.parse('2,imu7,,0.2,9.8', 0);
    expect('reading' in gap && Number.isNaN(gap.reading.values[0])).toBe(true);
    expect(p.parse('2,imu7,0.1', 0)).toMatchObject({ drop: 'column-count' });
    expect(p.parse('2,imu7,abc,0.2,9.8', 0)).toMatchObject({ drop: 'malformed' });
  });

  it('whitespace by index without header, key=value and JSON lines', () => {
    const w = new LineFormatParser({ format: 'whitespace', columns: [1, 2], header: false });
    expect(w.parse('  7   0.5  -1e-3 ', 42)).toEqual({ reading: { stream: 'default', values: [0.5, -0.001], t: 42 } });
    const kv = new LineFormatParser({ format: 'kv', columns: ['hr', 'spo2'], streamColumn: 'dev' });
    expect(kv.parse('dev=a1 hr=72 spo2=98', 5)).toEqual({ reading: { stream: 'a1', values: [72, 98], t: 5 } });
    expect(kv.parse('hr=72 spo2', 5)).toMatchObject({ drop: 'malformed' });
    const j = new LineFormatParser({ format: 'jsonl', columns: ['x', 'y'] });
    expect(j.parse('{"stream":"s1","x":1,"y":2,"t":99}', 0)).toEqual({ reading: { stream: 's1', values: [1, 2], t: 99 } });
    expect(j.parse('{"values":[3,4]}', 7)).toEqual({ reading: { stream: 'default', values: [3, 4], t: 7 } });
    expect(j.parse('{"values":[3]}', 7)).toMatchObject({ drop: 'column-count' });
    expect(j.parse('[1,2]', 7)).toMatchObject({ drop: 'malformed' });
    expect(j.parse('{oops', 7)).toMatchObject({ drop: 'malformed' });
  });
});

describe('BinaryFrameParser', () => {
  const opts = { dtype: 'int16' as const, channels: 3, scale: 0.001 };

  it('CRC-16/CCITT-FALSE check value', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x29b1);
  });

  it('decodes frames split anywhere, drops a corrupted one and resynchronises', async () => {
    const a = encodeFrame([0.1, -0.2, 9.81], opts);
    const b = Buffer.from(encodeFrame([1, 2, 3], opts));
    b[5] = b[5]! ^ 0xff; // corrupt the payload
    const c = encodeFrame([-1, 0, 1], opts);
    const all = Buffer.concat([Buffer.from([0x01, 0x02]), a, b, c]);
    const out = await run<FrameChunk>(new BinaryFrameParser(opts), [all.subarray(0, 5), all.subarray(5, 13), all.subarray(13)]);
    const frames = out.filter((o): o is { values: number[] } => 'values' in o);
    expect(frames.map((f) => f.values.map((v) => Math.round(v * 1000) / 1000))).toEqual([
      [0.1, -0.2, 9.81],
      [-1, 0, 1],
    ]);
    expect(out.filter((o) => 'drop' in o).map((o) => (o as { drop: { reason: string } }).drop.reason)).toContain('crc');
  });

  it('float32 frames and a truncated tail', async () => {
    const f = { dtype: 'float32' as const, channels: 2 };
    const frame = encodeFrame([3.25, -7.5], f);
    const out = await run<FrameChunk>(new BinaryFrameParser(f), [Buffer.concat([frame, frame.subarray(0, 4)])]);
    expect(out[0]).toEqual({ values: [3.25, -7.5] });
    expect(out[1]).toMatchObject({ drop: { reason: 'malformed' } });
  });

  it('rejects impossible options', () => {
    expect(() => new BinaryFrameParser({ dtype: 'float32', channels: 100 })).toThrow(/do not fit a one-byte length/);
  });
});
