import { statfs } from "node:fs/promises";
import { cpus, freemem, totalmem } from "node:os";

export interface ResourceFigures {
  cpu_percent: number;
  memory_percent: number;
  disk_percent: number;
}

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const times = cpu.times;
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total };
}

const percent = (value: number) => Math.round(Math.min(100, Math.max(0, value)) * 10) / 10;

/**
 * The machine's real figures for heartbeats: CPU busy share since the previous sample (all cores),
 * memory in use (total minus available, as `free` reports it), and the disk the agent works on, used
 * against what an unprivileged user can use (as `df` reports it).
 */
export class SystemFigures {
  private previous: CpuTimes = cpuTimes();

  constructor(private readonly diskPath: string) {}

  async sample(): Promise<ResourceFigures> {
    const now = cpuTimes();
    const busy = now.total - this.previous.total;
    const idle = now.idle - this.previous.idle;
    this.previous = now;
    const disk = await statfs(this.diskPath);
    const used = disk.blocks - disk.bfree;
    const usable = used + disk.bavail;
    return {
      cpu_percent: busy > 0 ? percent((1 - idle / busy) * 100) : 0,
      memory_percent: percent((1 - freemem() / totalmem()) * 100),
      disk_percent: usable > 0 ? percent((used / usable) * 100) : 0,
    };
  }
}
