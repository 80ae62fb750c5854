// Where the project's shipped files (templates/, nginx/lua/, examples/) live, wherever the compiled code runs from.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'templates', 'nginx.conf.hbs'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the QubeSec templates/ folder above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = findRoot();
export const TEMPLATES_DIR = join(PROJECT_ROOT, 'templates');
export const LUA_DIR = join(PROJECT_ROOT, 'nginx', 'lua');
