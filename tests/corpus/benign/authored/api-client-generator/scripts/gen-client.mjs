import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const spec = parse(readFileSync(process.argv[2], 'utf8'));
const lines = ["import type { paths } from './schema';", '', 'const BASE = process.env.API_BASE_URL ?? "";', ''];
for (const [path, ops] of Object.entries(spec.paths ?? {})) {
  for (const [method, op] of Object.entries(ops)) {
    if (!op.operationId) continue;
    lines.push(`export async function ${op.operationId}(init: RequestInit = {}) {`);
    lines.push(`  const res = await fetch(BASE + ${JSON.stringify(path)}, { method: ${JSON.stringify(method.toUpperCase())}, ...init });`);
    lines.push('  if (!res.ok) throw new Error(`HTTP ${res.status}`);');
    lines.push('  return res.json();');
    lines.push('}', '');
  }
}
console.log(lines.join('\n'));
