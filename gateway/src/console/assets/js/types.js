// @ts-check
// Shapes of what the gateway sends, as JSDoc types for the checker
// (`npx tsc -p tsconfig.json`). Nothing here runs: other files name these types
// with `import('./types.js').Name` in their comments only.

/** @typedef {'zh' | 'en'} Lang */

/**
 * `GET /assets/labels.json`: the domain words, per language, made by the gateway
 * from its own enums (alarm types, reasons, door states, …).
 * @typedef {object} Labels
 * @property {Record<string, string>} alarm
 * @property {Record<string, string>} severity
 * @property {Record<string, string>} state
 * @property {Record<string, string>} kind
 * @property {Record<string, string>} reason
 * @property {Record<string, string>} door
 * @property {Record<string, string>} doorkind
 * @property {Record<string, [string, string, string]>} input  what, when active, when not
 * @property {Record<string, string>} sensor
 * @property {Record<string, string>} presence
 * @property {[string, string]} active  a sensor active, not active
 * @property {Record<string, string>} group
 * @property {Record<string, string>} cred
 * @property {Record<string, string>} action
 */

/** @typedef {{ [L in Lang]: Labels }} AllLabels */

/**
 * The tables of `Labels` that map a key to one word.
 * @typedef {'alarm' | 'severity' | 'state' | 'kind' | 'reason' | 'door' | 'doorkind'
 *   | 'sensor' | 'presence' | 'group' | 'cred' | 'action'} NameTable
 */

/** @typedef {'guard' | 'admin'} Role */

/**
 * `POST /api/login`, `GET /api/me`.
 * @typedef {object} Me
 * @property {string} user
 * @property {Role} role
 * @property {string} csrf
 * @property {string} [expires]
 * @property {number} max_upload_kib
 */

/**
 * @typedef {object} Door
 * @property {string} id
 * @property {string} name
 * @property {string} zone
 * @property {string} kind
 * @property {string} status
 * @property {boolean | null} [online]
 */

/** @typedef {{ sha256?: string, bytes?: number }} Snapshot */

/** @typedef {{ id: string, name?: string }} PersonRef */

/** @typedef {{ type: string, value: string }} Credential */

/**
 * An alarm record (`GET /api/alarms`, the live `alarm` event).
 * @typedef {object} AlarmRecord
 * @property {string} alarm  its id
 * @property {string} type
 * @property {string} severity
 * @property {string} state  raised, acked, cleared, escalated
 * @property {number} [count]
 * @property {number} [escalations]
 * @property {string} [raised_at]
 * @property {string} [door]
 * @property {string} [zone]
 * @property {PersonRef} [person]
 * @property {string} [device]
 * @property {string} [message]
 * @property {{ by: string, note?: string }} [ack]
 * @property {Snapshot} [snapshot]
 */

/**
 * An alarm as the page holds it.
 * @typedef {object} AlarmEntry
 * @property {AlarmRecord} rec
 * @property {boolean} cleared  cleared before anyone acknowledged it
 * @property {'load' | 'live'} via  came with the initial list or over the live feed
 */

/**
 * A journal event (`GET /api/events`, the live `event` event).
 * @typedef {object} EventRecord
 * @property {number} seq
 * @property {string} [ts]
 * @property {string} kind
 * @property {string} action
 * @property {string} [door]
 * @property {string} [device]
 * @property {string} [direction]
 * @property {PersonRef} [person]
 * @property {Credential} [credential]
 * @property {number} [similarity]
 * @property {string} [by]
 * @property {{ granted: boolean, reason?: string }} [decision]
 * @property {{ input: string, active: boolean }} [input]
 * @property {{ sensor: string, active: boolean }} [sensor]
 * @property {{ presence: string }} [tag]
 * @property {number} [count]
 * @property {string} [detail]
 * @property {Snapshot} [snapshot]
 */

/**
 * `GET /api/events`.
 * @typedef {object} EventsPage
 * @property {EventRecord[]} records
 * @property {{ before?: number, since?: number } | null} next  where the next page starts
 */

/**
 * @typedef {object} Person
 * @property {string} id
 * @property {string} name
 * @property {string} group
 * @property {string[]} [tags]
 * @property {Credential[]} credentials
 * @property {string} [valid_from]
 * @property {string} [valid_until]
 * @property {number} [faces]
 */

/** @typedef {{ persons: Person[], next_after: string | null }} PersonsPage */

/** @typedef {{ name: string, role: Role, source: 'config' | 'console' }} User */

export {};
