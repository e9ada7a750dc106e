import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appVersion, electronBinary, parseArgs, start, UsageError } from './cli.js';
import { defaultDataDir } from './data-dir.js';

describe('msp-studio start arguments', () => {
  it('parses the flags', () => {
    expect(parseArgs(['start', '--browser', '--port', '8123', '--no-open', '--data-dir', '/tmp/x'])).toEqual({
      browser: true,
      port: 8123,
      open: false,
      dataDir: '/tmp/x',
    });
    expect(parseArgs(['--port=0'])).toMatchObject({
      port: 0,
      browser: false,
      open: true,
      dataDir: defaultDataDir(),
    });
    expect(parseArgs(['--help'])).toBeUndefined();
  });

  it('refuses bad arguments with a sentence naming the flag', () => {
    expect(() => parseArgs(['--port', 'abc'])).toThrow(
      new UsageError('--port must be a port number (0-65535), got "abc"'),
    );
    expect(() => parseArgs(['--port'])).toThrow('--port needs a value');
    expect(() => parseArgs(['--colour'])).toThrow('unknown argument "--colour"; see --help');
  });

  it('reads the version from package.json', () => {
    expect(appVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('puts data in the platform folder', () => {
    expect(defaultDataDir('linux', {}, '/home/ann')).toBe('/home/ann/.local/share/msp-studio');
    expect(defaultDataDir('linux', { XDG_DATA_HOME: '/data' }, '/home/ann')).toBe('/data/msp-studio');
    expect(defaultDataDir('darwin', {}, '/Users/ann')).toBe(
      '/Users/ann/Library/Application Support/MSP Studio',
    );
    expect(
      defaultDataDir('win32', { APPDATA: 'C:\\Users\\ann\\AppData\\Roaming' }, 'C:\\Users\\ann'),
    ).toContain('MSP Studio');
  });

  it('falls back to browser mode where the Electron binary is absent, and says so with the URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msp-cli-'));
    const lines: string[] = [];
    const forced = electronBinary() === undefined ? false : true;
    const started = await start({ browser: forced, port: 0, open: false, dataDir: dir }, (l) =>
      lines.push(l),
    );
    try {
      expect(started.mode).toBe('browser');
      if (started.mode !== 'browser') return;
      expect(lines[0]).toMatch(
        /^MSP Studio is running in browser mode at http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/,
      );
      expect(lines[0]).toContain(started.server.url);
    } finally {
      if (started.mode === 'browser') await started.server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
