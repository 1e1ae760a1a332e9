/** What the bundle's default step model should be: the faster (`speed`), the smaller (`size`), or a fixed one. A module of its own: the CLI's option list needs it without loading the chooser. */
export type StepPreference = 'speed' | 'size' | 'float' | 'int8';
export const STEP_PREFERENCES: readonly StepPreference[] = ['speed', 'size', 'float', 'int8'];
