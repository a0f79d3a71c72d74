/**
 * The guest's /init writes the script's stdout to ttyS1 (raw mode, byte-exact) as
 *   "\n@@BLOCKWORK-BEGIN@@\n" OUTPUT "\n@@BLOCKWORK-END <exit code>@@\n"
 * The leading and trailing newlines are the frame's, never the output's.
 */
export const BEGIN_MARKER = '\n@@BLOCKWORK-BEGIN@@\n';
const END_RE = /\n@@BLOCKWORK-END (\d+)@@\n/g;

/** What a ttyS1 capture holds. */
export interface SerialFrame {
  /** The script's exit code, or null when no end marker arrived (killed, crashed, timed out). */
  exitCode: number | null;
  /** The script's stdout, exactly; what arrived so far when the end marker is missing. */
  output: Buffer;
}

/** Splits a ttyS1 capture into the script's output and exit code. */
export function parseSerialFrame(raw: Buffer): SerialFrame {
  const begin = raw.indexOf(BEGIN_MARKER, 0, 'latin1');
  if (begin < 0) return { exitCode: null, output: Buffer.alloc(0) };
  const start = begin + BEGIN_MARKER.length;
  // latin1 maps bytes 1:1 to UTF-16 code units, so string offsets are byte offsets.
  const text = raw.toString('latin1', start);
  let last: RegExpExecArray | undefined;
  END_RE.lastIndex = 0;
  for (let m = END_RE.exec(text); m; m = END_RE.exec(text)) last = m;
  // Only an end marker that closes the capture counts; output may contain look-alikes.
  if (!last || last.index + last[0].length !== text.length) {
    return { exitCode: null, output: raw.subarray(start) };
  }
  return { exitCode: Number(last[1]), output: raw.subarray(start, start + last.index) };
}
