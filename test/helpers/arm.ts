/** Emulated ARM boards for the tests (scripts/arm-sysroot.sh, scripts/arm-run.sh). */

/**
 * A Raspberry Pi 4's /proc/cpuinfo, bind-mounted for emulated arm64 Node: onnxruntime's cpuinfo
 * library reads it and segfaults on the host's x86 one.
 */
export const PI4_CPUINFO =
  Array.from(
    { length: 2 },
    (_, i) =>
      `processor\t: ${i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`,
  ).join('\n') + '\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n';
