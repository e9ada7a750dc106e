/**
 * Where MSP Studio keeps its data (database, files, models) when `--data-dir` is not given:
 * Linux `$XDG_DATA_HOME/msp-studio` (default `~/.local/share/msp-studio`), macOS
 * `~/Library/Application Support/MSP Studio`, Windows `%APPDATA%\MSP Studio`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'MSP Studio');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'MSP Studio');
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'msp-studio');
}
