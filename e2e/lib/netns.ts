// A test host in its own network namespace. Kubernetes refuses loopback addresses in EndpointSlices, so e2e backends
// live at 198.18.0.0/15 (RFC 2544, for testing) inside a namespace this test creates, joined to the host by a veth pair.
import { execa, type ResultPromise } from 'execa';

export interface TestHost {
  /** The backend's address, inside the namespace. */
  address: string;
  /** Starts a long-running process inside the namespace. */
  spawn(file: string, args: string[]): ResultPromise;
  stop(): Promise<void>;
}

let counter = 0;

export async function createTestHost(): Promise<TestHost> {
  const index = (process.pid % 200) + counter++;
  const name = `qubesec-e2e-${process.pid}-${counter}`;
  const hostSide = `qsh${index}`;
  const nsSide = `qsn${index}`;
  const subnet = `198.18.${index}`;
  const ip = (...args: string[]) => execa('ip', args);
  const children: ResultPromise[] = [];
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.allSettled(children);
    await execa('ip', ['netns', 'del', name], { reject: false });
    await execa('ip', ['link', 'del', hostSide], { reject: false });
  };
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide);
    await ip('link', 'set', nsSide, 'netns', name);
    await ip('addr', 'add', `${subnet}.1/30`, 'dev', hostSide);
    await ip('link', 'set', hostSide, 'up');
    await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', nsSide);
    await ip('netns', 'exec', name, 'ip', 'link', 'set', nsSide, 'up');
    await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address: `${subnet}.2`,
    spawn(file, args) {
      const child = execa('ip', ['netns', 'exec', name, file, ...args], { reject: false, stdin: 'ignore', all: true });
      children.push(child);
      return child;
    },
    stop,
  };
}

