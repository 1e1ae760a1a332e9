#!/usr/bin/env node
/**
 * The `streamcell` executable. It checks the Node.js version before importing anything: on an
 * older Node a dependency would die with an obscure SyntaxError (a regular expression flag) long
 * before any of our messages could run.
 */
const NEED = 20;
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= NEED)) {
  process.stderr.write(
    `streamcell: needs Node.js ${NEED} or newer; this is ${process.version}. ` +
      `Debian 12 and Raspberry Pi OS Bookworm ship Node 18 (apt install nodejs): install Node ${NEED} from nodejs.org ` +
      `(the linux-arm64 / linux-armv7l / linux-x64 tarball) or the NodeSource apt repository, then run streamcell with it.\n`,
  );
  process.exit(2);
}
// `streamcell --version` alone answers before the argument parser loads: yargs is most of what
// the full CLI costs to start (scripts/bench/startup.mjs measures both).
if (process.argv.length === 3 && process.argv[2] === '--version') {
  const { VERSION } = await import('../version.js');
  process.stdout.write(`${VERSION}\n`);
} else {
  const { main } = await import('./main.js');
  await main(process.argv);
}
