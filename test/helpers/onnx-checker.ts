/**
 * Independent validation of every ONNX file the tests write: Debian's python3-onnx
 * (`onnx.checker.check_model(path, full_check=True)`), run once for a batch of files.
 */
import { execFileSync } from 'node:child_process';

/** Debian's interpreter: the `python3` first on PATH may be another one without python3-onnx. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

const SCRIPT = `
import json, sys, onnx
res = {}
for p in sys.argv[1:]:
    try:
        onnx.checker.check_model(p, full_check=True)
        res[p] = None
    except Exception as e:
        res[p] = str(e).splitlines()[0] if str(e) else type(e).__name__
print(json.dumps({"version": onnx.__version__, "results": res}))
`;

export function checkOnnxFiles(paths: string[]): { version: string; results: Record<string, string | null> } {
  let out: string;
  try {
    out = execFileSync(SYSTEM_PYTHON, ['-c', SCRIPT, ...paths], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '');
    if (/No module named 'onnx'|ENOENT/.test(stderr + String(e))) {
      throw new Error(`${SYSTEM_PYTHON} cannot import onnx: install Debian's python3-onnx (apt-get install python3-onnx; .ci/run does it)`);
    }
    throw e;
  }
  return JSON.parse(out) as { version: string; results: Record<string, string | null> };
}
