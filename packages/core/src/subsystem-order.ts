import type { Subsystem } from './subsystem';

/** Subsystems sorted so each follows those it depends on; dependencies not present are ignored. */
export function orderSubsystems(list: readonly Subsystem[]): Subsystem[] {
  const byName = new Map(list.map((s) => [s.name, s]));
  const out: Subsystem[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: Subsystem, path: string[]) => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') throw new Error(`subsystem dependency cycle: ${[...path, s.name].join(' -> ')}`);
    state.set(s.name, 'visiting');
    for (const d of s.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep, [...path, s.name]);
    }
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of list) visit(s, []);
  return out;
}
