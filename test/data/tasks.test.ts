import { describe, expect, it } from 'vitest';
import { DEFAULT_SEQUENCE, TaskError, formatClassList, parseSequence, parseTask, sequenceName } from '../../src/data/tasks.ts';

describe('tasks', () => {
  it('parses whole datasets', () => {
    expect(parseTask('mnist')).toMatchObject({ name: 'mnist', dataset: 'mnist', classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] });
    expect(parseTask('fashion').classNames[9]).toBe('Ankle boot');
  });

  it('parses subsets and gives them a canonical name', () => {
    expect(parseTask('mnist:0-4')).toMatchObject({ name: 'mnist:0-4', classes: [0, 1, 2, 3, 4] });
    expect(parseTask('mnist:4,3,2,1,0').name).toBe('mnist:0-4');
    expect(parseTask('fashion:0,2,4')).toMatchObject({ name: 'fashion:0,2,4', classes: [0, 2, 4] });
    expect(parseTask('fashion:4,2,0,2').name).toBe('fashion:0,2,4');
    expect(parseTask('mnist:0-2,7').name).toBe('mnist:0-2,7');
    expect(parseTask('mnist:0-9').name).toBe('mnist');
    expect(formatClassList([5, 6, 1])).toBe('1,5-6');
  });

  it('rejects unknown names, listing the valid ones', () => {
    expect(() => parseTask('cifar')).toThrow(TaskError);
    expect(() => parseTask('cifar')).toThrow(/Unknown task 'cifar'.*Valid tasks: mnist, fashion.*split-mnist, split-fashion, mnist,fashion \(default\)/);
    expect(() => parseTask('mnist:0-12')).toThrow(/Class 12 .* out of range/);
    expect(() => parseTask('mnist:4-2')).toThrow(/end is below the start/);
    expect(() => parseTask('mnist:a')).toThrow(/not a class or a range/);
    expect(() => parseTask('split-mnist')).toThrow(/is a sequence/);
    expect(() => parseSequence('mnist,cifar')).toThrow(/Unknown task 'cifar'/);
  });

  it('expands named sequences', () => {
    expect(parseSequence('split-mnist').map((t) => t.name)).toEqual(['mnist:0-1', 'mnist:2-3', 'mnist:4-5', 'mnist:6-7', 'mnist:8-9']);
    expect(parseSequence('split-fashion')).toHaveLength(5);
    expect(parseSequence().map((t) => t.name)).toEqual(['mnist', 'fashion']);
    expect(DEFAULT_SEQUENCE).toBe('mnist,fashion');
  });

  it('parses task lists where subsets contain commas', () => {
    expect(parseSequence('mnist:0-4,fashion:0,2,4').map((t) => t.name)).toEqual(['mnist:0-4', 'fashion:0,2,4']);
    expect(parseSequence('fashion:0,2 mnist').map((t) => t.name)).toEqual(['fashion:0,2', 'mnist']);
    expect(parseSequence('split-mnist,fashion')).toHaveLength(6);
  });

  it('names sequences stably', () => {
    expect(sequenceName(parseSequence('split-mnist'))).toBe('split-mnist');
    expect(sequenceName(parseSequence('mnist fashion'))).toBe('mnist,fashion');
    expect(sequenceName(parseSequence('fashion:0,2,4 mnist:0-4'))).toBe('fashion:0,2,4 mnist:0-4');
  });
});
