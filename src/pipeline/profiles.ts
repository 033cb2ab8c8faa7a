/**
 * The profiles objects are processed under. Each job names its configuration by a hash (job ids and
 * work keys derive from it), and every stage of one object runs under that same profile: a SIGHUP that
 * changes the profile lets the objects in flight finish under the old one, and a requeue may name
 * another profile for one object.
 */
import { isAbsolute, resolve } from 'node:path';
import { configHash } from '../keyed.js';
import { compileProfile, readProfileChain, type CompiledProfile } from '../profiles/profile.js';

/** A profile as an operator names it: a built-in name or a file, and the options. */
export interface ProfileChoice {
  readonly profile: string;
  readonly options: readonly string[];
}

export interface ChosenProfile {
  readonly profile: CompiledProfile;
  /** configHash(secret, fingerprint): what job ids and work keys of objects under it derive from. */
  readonly config: string;
  /** How another process loads it: set for a profile chosen for one object (a requeue). */
  readonly choice?: ProfileChoice;
}

const looksLikePath = (p: string) => /[\\/]/.test(p) || /\.(ya?ml|json)$/i.test(p);

/** The choice with its file as an absolute path, so that another process (another working directory) finds it. */
export const absoluteChoice = (c: ProfileChoice): ProfileChoice => ({ profile: looksLikePath(c.profile) && !isAbsolute(c.profile) ? resolve(c.profile) : c.profile, options: [...c.options] });

/** Reads and compiles a profile afresh: its files as they are now (loadProfile caches the start-up version). */
export function compileChoice(choice: ProfileChoice): CompiledProfile {
  return compileProfile(readProfileChain(absoluteChoice(choice).profile), choice.options);
}

/** The profiles of this process by configuration hash: the current one, and those of objects still in flight. */
export class ProfileRegistry {
  private readonly byConfig = new Map<string, ChosenProfile>();
  current: ChosenProfile;

  constructor(
    private readonly secret: Uint8Array,
    profile: CompiledProfile,
    private readonly max = 16,
  ) {
    this.current = this.register(profile);
  }

  private register(profile: CompiledProfile, choice?: ProfileChoice): ChosenProfile {
    const config = configHash(this.secret, profile.fingerprint);
    const known = this.byConfig.get(config);
    const chosen = known && !choice ? known : { profile, config, ...(choice ? { choice: absoluteChoice(choice) } : {}) };
    this.byConfig.delete(config);
    this.byConfig.set(config, chosen);
    for (const k of this.byConfig.keys()) {
      if (this.byConfig.size <= this.max) break;
      if (k !== this.current?.config) this.byConfig.delete(k);
    }
    return chosen;
  }

  /** The profile new objects get from now on (a reload). */
  setCurrent(profile: CompiledProfile): ChosenProfile {
    this.current = this.register(profile);
    return this.current;
  }

  /** A profile chosen for one object; throws the profile's coded errors. */
  load(choice: ProfileChoice): ChosenProfile {
    return this.register(compileChoice(choice), choice);
  }

  /** The profile a job was made under, if this process has it or can load the job's choice to the same hash. */
  forJob(config: string | undefined, choice?: ProfileChoice): ChosenProfile | undefined {
    const hit = config ? this.byConfig.get(config) : undefined;
    if (hit) return hit;
    if (!choice) return undefined;
    try {
      const loaded = this.load(choice);
      return loaded.config === config ? loaded : undefined;
    } catch {
      return undefined;
    }
  }
}
