// What each journaled transition records for the visualizer's time travel (pure, table-driven).
import { describe, expect, it } from 'vitest';
import type { DeploymentContext } from '../../machines/deployment.machine.ts';
import { STEP_ERROR_MAX, stepContext, type StepContext } from '../../src/runtime/stepContext.ts';

type Input = Parameters<typeof stepContext>[0];
const work = (over: Partial<NonNullable<DeploymentContext['work']>> = {}) =>
  ({ actionId: '3-1-deploy', action: 'deploy', generation: 3, imageRef: 'shop:2', attempt: 0, ...over }) as NonNullable<DeploymentContext['work']>;
const deployed = { imageRef: 'shop:1' } as NonNullable<DeploymentContext['deployed']>;
const desired = { imageRef: 'shop:3' } as NonNullable<DeploymentContext['desired']>;
const completed = (over: Partial<NonNullable<DeploymentContext['completed']>> = {}) =>
  ({ actionId: '4-2-deploy', action: 'deploy', status: 'failed', imageRef: 'shop:crash', generation: 4, ...over }) as NonNullable<DeploymentContext['completed']>;
const ctx = (over: Partial<Input>): Input => ({ work: null, deployed: null, desired: null, lastError: null, completed: null, ...over });

describe('stepContext', () => {
  it.each<[string, Input, StepContext]>([
    ['at rest before anything', ctx({}), { actionId: null, imageRef: null, attempt: null, lastError: null }],
    ['at rest, healthy', ctx({ deployed, desired }), { actionId: null, imageRef: 'shop:1', attempt: null, lastError: null }],
    ['a deploy in flight', ctx({ work: work(), deployed, desired }), { actionId: '3-1-deploy', imageRef: 'shop:2', attempt: 0, lastError: null }],
    ['a retry', ctx({ work: work({ attempt: 2 }), lastError: 'git remote down (attempt 2, retrying)' }), { actionId: '3-1-deploy', imageRef: 'shop:2', attempt: 2, lastError: 'git remote down (attempt 2, retrying)' }],
    ['a rollback before its target is found shows what runs', ctx({ work: work({ imageRef: '', action: 'rollback' }), deployed }), { actionId: '3-1-deploy', imageRef: 'shop:1', attempt: 0, lastError: null }],
    ['nothing deployed yet: the desired image', ctx({ work: work({ imageRef: '' }), desired }), { actionId: '3-1-deploy', imageRef: 'shop:3', attempt: 0, lastError: null }],
    ['the step ending a failed action belongs to it', ctx({ deployed, completed: completed(), lastError: 'rollout failed' }), { actionId: '4-2-deploy', imageRef: 'shop:crash', attempt: null, lastError: 'rollout failed' }],
    ['the step ending a deploy shows what it deployed', ctx({ deployed, completed: completed({ status: 'succeeded', imageRef: 'shop:1' }) }), { actionId: '4-2-deploy', imageRef: 'shop:1', attempt: null, lastError: null }],
    ['a new action wins over the completed one', ctx({ work: work(), deployed, completed: completed() }), { actionId: '3-1-deploy', imageRef: 'shop:2', attempt: 0, lastError: null }],
    ['a rollback before its target is found, after a completed action', ctx({ work: work({ imageRef: '' }), deployed, completed: completed() }), { actionId: '3-1-deploy', imageRef: 'shop:1', attempt: 0, lastError: null }],
  ])('%s', (_name, input, expected) => {
    expect(stepContext(input)).toEqual(expected);
  });

  it.each([
    ['a URL password', 'fetch https://bot:hunter2@git.example/ops.git failed', 'fetch https://bot:***@git.example/ops.git failed'],
    ['a URL token', 'clone https://ghp_abcdef@github.com/x.git: 403', 'clone https://***@github.com/x.git: 403'],
    ['an API token', `token kls_${'a'.repeat(30)} refused`, 'token kls_*** refused'],
  ])('redacts %s in the error', (_name, error, expected) => {
    expect(stepContext(ctx({ lastError: error })).lastError).toBe(expected);
  });

  it('bounds a huge error', () => {
    const error = stepContext(ctx({ lastError: 'x'.repeat(10_000) })).lastError ?? '';
    expect(error).toHaveLength(STEP_ERROR_MAX);
    expect(error.endsWith('…')).toBe(true);
  });
});
