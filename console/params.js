// A generation model's parameters as form fields, from its JSON Schema
// (GET /api/ai/models/ answers `params_schema`): enums become selects,
// booleans checkboxes, integers and numbers number inputs with their
// bounds, strings text inputs; anything else (objects, arrays) a JSON text
// area. The API validates against the schema itself and names the
// parameter it refuses, so the form only has to help.

import { h } from './dom.js';

/** A field per property, required ones marked. */
export function schemaFields(schema) {
  const required = new Set(schema?.required ?? []);
  return Object.entries(schema?.properties ?? {}).map(([name, prop]) => field(name, prop, required.has(name)));
}

const humanize = (name) => name.replace(/[_-]+/g, ' ').replace(/^./, (c) => c.toUpperCase());

function field(name, prop, required) {
  const fieldId = `param-${name}`;
  const hintId = prop.description ? `${fieldId}-hint` : null;
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  const common = { id: fieldId, name, required, 'aria-describedby': hintId };
  let input;
  if (Array.isArray(prop.enum)) {
    input = h('select', { ...common, dataset: { param: name, kind: 'enum' } },
      !required && h('option', { value: '' }, '(default)'),
      prop.enum.map((v) => h('option', { value: JSON.stringify(v), selected: v === prop.default }, String(v))));
  } else if (type === 'boolean') {
    input = h('input', { ...common, type: 'checkbox', required: false, checked: prop.default === true, dataset: { param: name, kind: 'boolean' } });
  } else if (type === 'integer' || type === 'number') {
    input = h('input', { ...common, type: 'number', min: prop.minimum, max: prop.maximum,
      step: type === 'integer' ? (prop.multipleOf ?? 1) : (prop.multipleOf ?? 'any'),
      value: prop.default ?? '', dataset: { param: name, kind: type } });
  } else if (type === 'string') {
    // No `pattern`: HTML anchors it and JSON Schema does not; the API checks it.
    input = h('input', { ...common, type: 'text', minlength: prop.minLength, maxlength: prop.maxLength,
      value: prop.default ?? '', dataset: { param: name, kind: 'string' } });
  } else {
    // Objects and arrays: JSON, checked by the API against the schema.
    input = h('textarea', { ...common, rows: 2, value: prop.default === undefined ? '' : JSON.stringify(prop.default),
      dataset: { param: name, kind: 'json' } });
  }
  const label = `${prop.title ?? humanize(name)}${prop.minimum != null && prop.maximum != null ? ` (${prop.minimum}–${prop.maximum})` : ''}`;
  return h('div', { class: type === 'boolean' ? 'field check' : 'field' },
    type === 'boolean' ? [input, h('label', { for: fieldId }, label)] : [h('label', { for: fieldId }, label), input],
    hintId && h('p', { id: hintId, class: 'hint' }, prop.description));
}

/** The values of the fields inside `container`, typed as the schema says; empty ones are left out (the model's defaults apply). */
export function paramValues(container) {
  const params = {};
  for (const input of container.querySelectorAll('[data-param]')) {
    const { param, kind } = input.dataset;
    if (kind === 'boolean') params[param] = input.checked;
    else if (input.value === '') continue;
    else if (kind === 'integer' || kind === 'number') params[param] = Number(input.value);
    else if (kind === 'enum') params[param] = JSON.parse(input.value);
    else if (kind === 'json') {
      try {
        params[param] = JSON.parse(input.value);
      } catch {
        input.focus();
        throw new Error(`${param} must be JSON`);
      }
    } else params[param] = input.value;
  }
  return params;
}
