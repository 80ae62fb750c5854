// images/Dockerfile parsed and held to its rules, without a build (the node e2e tests build and run the image with
// buildah): pinned bases, stages both BuildKit and buildah resolve, non-root with no capability, the shared package
// list, files that exist.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Copy, DockerfileParser, JSONInstruction, type Instruction } from 'dockerfile-ast';
import { parse } from 'yaml';
import { LUA_DIR, PROJECT_ROOT, TEMPLATES_DIR } from './project.js';

interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');
const dockerfile = DockerfileParser.parse(read('images/Dockerfile'));

const globalArgs = new Map(dockerfile.getInitialARGs().map((a) => [a.getProperty()?.getName() ?? '', a.getProperty()?.getValue() ?? null]));

function stages(): Stage[] {
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === instruction.getRange().start.line);
      result.push({ image: from?.getImage() ?? '', name: from?.getBuildStage() ?? null, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

const stageNamed = (name: string) => {
  const stage = stages().find((s) => s.name === name);
  if (!stage) throw new Error(`images/Dockerfile has no stage ${name}`);
  return stage;
};
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.getKeyword() === keyword);
const argumentsOf = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());
const copies = (stage: Stage) => of(stage, 'COPY').filter((c) => c instanceof Copy);
const copiedFrom = (copy: Copy) => copy.getFromFlag()?.getValue() ?? null;
/** A base image with every ${ARG} replaced by its global default, as docker resolves it. */
const resolved = (image: string) => image.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? `\${${name}}`);
const packageList = (path: string) => read(path).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

describe('images/Dockerfile', () => {
  const all = stages();
  const stageNames = new Set(all.map((s) => s.name).filter((n) => n !== null));
  const final = all.at(-1)!;

  it('bases every stage on an exact tag or digest of a pinned version, on an earlier stage, or on nothing (scratch)', () => {
    const unpinned = all
      .map((s) => s.image)
      .filter((image) => !stageNames.has(image) && image !== 'scratch')
      .filter((image) => {
        const base = resolved(image);
        const digest = /@sha256:[0-9a-f]{64}$/.test(base);
        const tag = base.split('@')[0]!.split(':')[1];
        // An exact tag names a version: a date (trixie-20251208-slim) or a full x.y.z (from .node-version).
        return !digest && !(tag !== undefined && tag !== 'latest' && /(\d{8}|\d+\.\d+\.\d+|\$\{NODE_VERSION\})/.test(tag));
      });
    expect(unpinned).toEqual([]);
  });

  // buildah 1.28 substitutes ${ARG} in FROM but then looks the result up as an image, never as a stage: a stage
  // picked by `FROM oqs-${WITH_OQS}` fails there. Stages are named literally; variants are build targets.
  it('names earlier stages literally in FROM, so buildah as well as BuildKit finds them', () => {
    const computed = all.map((s) => s.image).filter((image) => image.includes('${'));
    expect(computed.length).toBeGreaterThan(0);
    expect(computed.filter((image) => stageNames.has(resolved(image)))).toEqual([]);
    expect(all.map((s) => s.name).filter((name) => name?.includes('$'))).toEqual([]);
  });

  it('takes Node.js from .node-version, which images/build.sh passes, with no default that could drift', () => {
    expect(globalArgs.has('NODE_VERSION')).toBe(true);
    expect(globalArgs.get('NODE_VERSION')).toBeNull();
    expect(stageNamed('build').image).toBe('node:${NODE_VERSION}-trixie-slim');
    expect(read('images/build.sh')).toContain('NODE_VERSION=$(cat "$root/.node-version")');
  });

  it('runs the final image as a fixed non-root user with the controller as entrypoint', () => {
    const runtime = stageNamed('runtime');
    const users = of(runtime, 'USER').map((u) => u.getArgumentsContent());
    expect(users).toEqual(['101:101']);
    expect(argumentsOf(of(runtime, 'ENTRYPOINT')[0]!).join(' ')).toContain('dist/controller/cli/main.js');
    expect(of(runtime, 'HEALTHCHECK')[0]?.getArgumentsContent()).toContain('/healthz');
    // The default target is runtime as it is; the oqs target adds to runtime; neither switches back to root.
    expect(final.name).toBe('plain');
    expect(final.image).toBe('runtime');
    expect(final.instructions).toEqual([]);
    expect(stageNamed('oqs').image).toBe('runtime');
    expect(of(stageNamed('oqs'), 'USER')).toEqual([]);
    // images/build.sh builds the oqs target for WITH_OQS=true, with Docker and buildah alike.
    expect(read('images/build.sh')).toMatch(/if \[ "\$\{WITH_OQS:-false\}" = true \]; then args\+=\(--target oqs\); fi/);
  });

  // A file capability above the bounding set makes exec fail (EPERM) in a Pod that drops ALL capabilities, and
  // without NET_BIND_SERVICE a non-root process binds only ports from 1024 up.
  it('gives NGINX no capability and listens, by default and in the chart, on ports from 1024 up', () => {
    const text = read('images/Dockerfile');
    expect(text).not.toMatch(/setcap|cap_net_bind_service/i);
    const runtime = stageNamed('runtime');
    const exposed = of(runtime, 'EXPOSE').flatMap(argumentsOf).map(Number);
    expect(exposed.length).toBeGreaterThan(0);
    expect(exposed.filter((port) => !(port >= 1024))).toEqual([]);
    const cmd = of(runtime, 'CMD')[0];
    expect(cmd).toBeInstanceOf(JSONInstruction);
    const command = (cmd as JSONInstruction).getJSONStrings().map((a) => a.getJSONValue());
    const flag = (name: string) => Number(command.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]);
    const { http, https } = parse(read('charts/qubesec/values.yaml')).controller.containerPort;
    expect([flag('http-port'), flag('https-port')]).toEqual([http, https]);
    expect(exposed).toEqual(expect.arrayContaining([http, https]));
  });

  it('ships the files the controller reads at run time: templates and the Lua module NGINX loads', () => {
    const copied = of(stageNamed('app'), 'COPY').map((c) => c.getArgumentsContent());
    expect(copied).toEqual(expect.arrayContaining(['/src/templates /opt/qubesec/templates', 'nginx/lua /opt/qubesec/nginx/lua']));
    expect(relative(PROJECT_ROOT, LUA_DIR)).toBe(join('nginx', 'lua'));
    expect(relative(PROJECT_ROOT, TEMPLATES_DIR)).toBe('templates');
  });

  it('installs exactly nginx/packages.txt and removes no package afterwards', () => {
    const runtime = stageNamed('runtime');
    expect(of(runtime, 'COPY').map((c) => c.getArgumentsContent())).toContain('nginx/packages.txt /tmp/packages.txt');
    const runs = of(runtime, 'RUN').map((r) => r.getArgumentsContent() ?? '');
    const install = runs.find((r) => r.includes('apt-get install'));
    expect(install).toBeDefined();
    // Nothing named on the install line itself: the list is the whole of it.
    expect(install).toMatch(/grep -v '\^#' \/tmp\/packages\.txt \| xargs apt-get install -y --no-install-recommends\s+&&/);
    // Removing a package with its dependants can take NGINX along (trixie: nginx -> iproute2 -> libcap2-bin).
    expect(runs.filter((r) => /apt-get\s+(-\S+\s+)*(purge|remove|autoremove)\b|dpkg\s+(-r|-P|--remove|--purge)\b/.test(r))).toEqual([]);
  });

  it('keeps the dev rootfs on the image list plus the test-only list, and the test tools out of the image', () => {
    const image = packageList('nginx/packages.txt');
    const testOnly = packageList('nginx/packages-test.txt');
    expect(image).toEqual(expect.arrayContaining(['nginx-light', 'libnginx-mod-http-lua', 'libnginx-mod-stream', 'openssl']));
    expect(testOnly).toEqual(expect.arrayContaining(['etcd-server', 'nghttp2-client']));
    expect(image.filter((p) => testOnly.includes(p))).toEqual([]);
    // The rootfs installs both lists (scripts/debootstrap-rootfs.sh joins the lists it is given, in order).
    expect(read('nginx/rootfs.sh')).toMatch(/^rootfs_begin \S+ trixie "\$forky" "\$root\/nginx\/packages\.txt" "\$root\/nginx\/packages-test\.txt"$/m);
    expect(read('scripts/debootstrap-rootfs.sh')).toContain('rootfs_packages="$(cat "$@" | grep -v \'^#\' | sed \'s/=.*//\' | xargs | tr \' \' \',\')"');
  });

  // One stage holds what the images ship of the controller; each image takes it whole, so they cannot differ in it.
  it('gives the controller image and the VPN image the same controller files, from the app stage', () => {
    const app = stageNamed('app');
    expect(app.image).toBe('scratch');
    for (const name of ['runtime', 'vpn']) {
      expect(copies(stageNamed(name)).filter((c) => copiedFrom(c) !== null).map((c) => [copiedFrom(c), ...argumentsOf(c).slice(-2)])).toEqual([['app', '/', '/']]);
    }
  });

  it('builds the VPN image from Debian unstable with exactly vpn/packages.txt, strongSwan pinned there for the test rootfs too', () => {
    const vpn = stageNamed('vpn');
    expect(vpn.image).toBe('${DEBIAN_SID_IMAGE}');
    expect(resolved(vpn.image)).toMatch(/^debian:sid-\d{8}-slim$/);
    expect(of(vpn, 'COPY').map((c) => c.getArgumentsContent())).toContain('vpn/packages.txt /tmp/packages.txt');
    const runs = of(vpn, 'RUN').map((r) => r.getArgumentsContent() ?? '');
    expect(runs.find((r) => r.includes('apt-get install'))).toMatch(/grep -v '\^#' \/tmp\/packages\.txt \| xargs apt-get install -y --no-install-recommends\s+&&/);
    expect(runs.filter((r) => /apt-get\s+(-\S+\s+)*(purge|remove|autoremove)\b|dpkg\s+(-r|-P|--remove|--purge)\b/.test(r))).toEqual([]);
    // Every strongSwan package pinned, to one version (apt installs exactly it); no build tools; test tools apart.
    const image = packageList('vpn/packages.txt');
    const strongswan = image.filter((p) => /strongswan|charon/.test(p));
    expect(strongswan.map((p) => p.split('=')[0])).toEqual(['strongswan-charon', 'strongswan-swanctl', 'libstrongswan-extra-plugins', 'libcharon-extra-plugins']);
    const versions = new Set(strongswan.map((p) => p.split('=')[1]));
    expect(versions.size).toBe(1);
    expect([...versions][0]).toMatch(/^\d+\.\d+\.\d+-\d+$/);
    expect(image.filter((p) => /^(build-essential|gcc|g\+\+|make|cmake|libc6-dev)(=|$)/.test(p))).toEqual([]);
    const testOnly = packageList('vpn/packages-test.txt');
    expect(testOnly).toEqual(expect.arrayContaining(['tcpdump', 'iproute2']));
    expect(image.map((p) => p.split('=')[0]!).filter((p) => testOnly.includes(p))).toEqual([]);
    // The test rootfs reads the same two lists, and its pin is strongswan-charon's line of the image's list.
    expect(read('vpn/rootfs.sh')).toMatch(/^rootfs_begin sid-vpn sid "\$STRONGSWAN_PIN" "\$root\/vpn\/packages\.txt" "\$root\/vpn\/packages-test\.txt"$/m);
    expect(read('vpn/rootfs.sh')).toContain('STRONGSWAN_PIN="$(sed -n \'s/^strongswan-charon=//p\' <<<"$pins")"');
  });

  it('runs the VPN image as `qubesec vpn run`, as root without a file capability, on the chart\'s ports', () => {
    const vpn = stageNamed('vpn');
    expect(argumentsOf(of(vpn, 'ENTRYPOINT')[0]!)).toEqual(['["node",', '"/opt/qubesec/dist/controller/cli/main.js",', '"vpn",', '"run"]']);
    expect(of(vpn, 'CMD')).toEqual([]);
    expect(of(vpn, 'USER').map((u) => u.getArgumentsContent())).toEqual(['0:0']);
    const { metricsPort } = parse(read('charts/qubesec-vpn/values.yaml'));
    expect(of(vpn, 'EXPOSE').flatMap(argumentsOf)).toEqual(['500/udp', '4500/udp', String(metricsPort)]);
    expect(of(vpn, 'HEALTHCHECK')[0]?.getArgumentsContent()).toContain(`127.0.0.1:${metricsPort}/healthz`);
    expect(read('charts/qubesec-vpn/values.yaml')).toMatch(/^ {2}repository: ghcr\.io\/qubesec\/qubesec-vpn$/m);
  });

  it('takes NGINX from forky in the image as in the dev rootfs, the version checked after the install, OpenSSL from trixie', () => {
    const run = of(stageNamed('runtime'), 'RUN').map((r) => r.getArgumentsContent() ?? '').find((r) => r.includes('apt-get install'))!;
    const steps = ['forky-nginx.sh sources /tmp/preferences', 'apt-get install', 'forky-nginx.sh check'].map((step) => run.indexOf(step));
    expect(steps[0]).toBeGreaterThanOrEqual(0);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    const rootfs = read('nginx/rootfs.sh');
    expect(rootfs).toContain('/tmp/forky-nginx.sh sources /tmp/nginx-preferences');
    expect(rootfs.indexOf('apt-get install')).toBeLessThan(rootfs.indexOf('/tmp/forky-nginx.sh check'));
    // Only NGINX, its modules and what they need are lifted from forky's low priority; never OpenSSL.
    const lifted = /Package: (nginx .*)\nPin: release n=forky\nPin-Priority: 990/.exec(read('nginx/apt/preferences'))?.[1]?.split(' ') ?? [];
    expect(lifted).toEqual(expect.arrayContaining(['nginx', 'nginx-light', 'libnginx-mod-http-lua', 'libnginx-mod-stream']));
    expect(lifted.filter((p) => /ssl|\*/.test(p))).toEqual([]);
  });

  it('copies only files that exist in the repository and that the build context lets through', () => {
    const ignore = read('images/Dockerfile.dockerignore').split('\n').filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    const sources = all
      .flatMap(copies)
      .filter((c) => copiedFrom(c) === null)
      .flatMap((c) => argumentsOf(c).slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    expect(sources.filter((s) => !existsSync(join(PROJECT_ROOT, s)))).toEqual([]);
    expect(sources.filter((s) => !ignore.includes(s))).toEqual([]);
  });

  it('copies from build stages that exist', () => {
    const from = all.flatMap(copies).map(copiedFrom).filter((f) => f !== null);
    expect(from.length).toBeGreaterThan(0);
    expect(from.filter((f) => !stageNames.has(f))).toEqual([]);
  });

  it('adds oqs-provider in the oqs target (not the default), checksummed, with OPENSSL_CONF on the config that loads it', () => {
    const build = stageNamed('oqs-build');
    const args = new Map(of(build, 'ARG').map((a) => { const [name, value] = (a.getArgumentsContent() ?? '').split('='); return [name, value ?? null]; }));
    expect(args.get('LIBOQS_SHA256')).toMatch(/^[0-9a-f]{64}$/);
    // Empty by default, and the build stops on an empty one.
    expect(args.get('OQS_PROVIDER_SHA256')).toBe('');
    const run = of(build, 'RUN').map((r) => r.getArgumentsContent() ?? '').join('\n');
    expect(run).toContain('[ -n "$OQS_PROVIDER_SHA256" ] || {');
    expect(run).toContain('echo "${LIBOQS_SHA256}  liboqs.tar.gz" | sha256sum -c -');
    expect(run).toContain('echo "${OQS_PROVIDER_SHA256}  oqs-provider.tar.gz" | sha256sum -c -');

    const oqs = stageNamed('oqs');
    const env = of(oqs, 'ENV').map((e) => e.getArgumentsContent());
    expect(env).toEqual(['OPENSSL_CONF=/etc/qubesec/openssl-oqs.cnf']);
    const added = copies(oqs).map((c) => [copiedFrom(c), ...argumentsOf(c)]);
    expect(added).toContainEqual([null, 'images/openssl-oqs.cnf', '/etc/qubesec/openssl-oqs.cnf']);
    expect(added).toContainEqual(['oqs-build', '/out/', '/']);
    // The configuration names no module path, so OpenSSL looks in its modules folder, where the build stage puts it.
    expect(read('images/openssl-oqs.cnf')).not.toMatch(/^module\s*=/m);
    expect(run).toContain('openssl version -m');
    expect(run).toContain('install -D -m 0644 oqs-provider/_build/lib/oqsprovider.so "/out${modules}/oqsprovider.so"');
    expect(of(stageNamed('runtime'), 'ENV')).toEqual([]);
  });
});
