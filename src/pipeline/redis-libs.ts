import { createRequire } from 'node:module';
import type * as BullMq from 'bullmq';
import type * as IoRedis from 'ioredis';

/**
 * The Redis client and BullMQ, loaded on first use: the embedded mode (the default) never needs them,
 * and loading them cost each thread about 0.2 s and 24 MB at start-up. Their CommonJS builds, so that
 * a constructor can load them synchronously (BullMQ then shares the one ioredis module).
 */
const load = createRequire(import.meta.url);

export const ioredis = (): typeof IoRedis => load('ioredis') as typeof IoRedis;
export const bullmq = (): typeof BullMq => load('bullmq') as typeof BullMq;
