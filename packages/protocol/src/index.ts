export * from './errors.js';
export * from './session.js';
export * from './frame.js';
export * from './command-line.js';
export * from './response.js';
export * from './names.js';
export * from './address.js';
export * from './wording.js';
