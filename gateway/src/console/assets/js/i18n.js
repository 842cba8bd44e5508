// @ts-check
// The page's own words (zh and en), the errors it words itself, and the domain
// words (alarm types, reasons, door states, …) that the gateway serves from its
// enums at /assets/labels.json, so that they are defined once, in Rust.

/** @typedef {import('./types.js').Lang} Lang */
/** @typedef {import('./types.js').Labels} Labels */
/** @typedef {import('./types.js').NameTable} NameTable */

/**
 * The page's words. Chinese is complete; English falls back to it.
 * @type {Record<Lang, Record<string, string>>}
 */
const L = {
  zh: {
    title: '门岗控制台', user: '用户名', password: '密码', login: '登录', logout: '退出',
    tab_alarms: '告警', tab_events: '通行记录', tab_doors: '门禁', tab_roster: '人员', tab_users: '用户',
    live_alarms: '实时告警', live_passes: '实时通行', no_alarms: '暂无告警',
    from: '开始时间', to: '结束时间', kind: '类型', door: '门', person: '人员', plate: '车牌',
    person_ph: '姓名或编号', plate_ph: '如 京A12345', search: '查询', clear: '清空', time: '时间',
    who: '人员/凭证', result: '结果', snapshot: '抓拍', no_records: '没有记录', more: '加载更多',
    roster_ph: '姓名、编号、卡号或车牌', add_person: '新增人员', name: '姓名', group: '类别',
    credentials: '凭证', valid_from: '生效时间', valid_until: '有效期至', faces: '人脸', tags: '标签',
    add_user: '新增/修改用户', role: '角色', source: '来源', role_guard: '保安', role_admin: '管理员',
    password_ph: '至少8位；修改角色时可留空', save: '保存', cancel: '取消', ack: '确认处理',
    ack_title: '确认告警', ack_note: '处理说明', ack_note_ph: '例如：已到现场查看，误报', dismiss: '知道了',
    open_door: '远程开门', open_confirm: '确定远程打开「{door}」吗？此操作将以您的名义记录。',
    open_title: '远程开门', opened: '已发送开门指令：{door}', acked: '告警已确认',
    release_hold: '解除电梯锁定', released: '已解除：{door}',
    online: '在线', offline: '离线', unknown: '未知', all: '全部', any_door: '全部门',
    conn_live: '实时', conn_connecting: '连接中…', conn_lost: '连接中断，正在重连…',
    count: '次数', escalated: '已升级', cleared_unacked: '已恢复（未确认）', acked_by: '{by} 已确认',
    raised_at: '发生于', edit: '编辑', delete: '删除', delete_confirm: '确定删除「{name}」吗？',
    person_title: '人员信息', add_credential: '添加凭证', face_photo: '人脸照片（JPEG）',
    face_enrolled: '人脸照片已录入', saved: '已保存', deleted: '已删除', sound_on: '声音开', sound_off: '声音关',
    config_user: '配置文件', console_user: '控制台', none: '无', granted: '通过', refused: '拒绝',
    gap: '离线时间过长，已重新加载告警列表', by: '操作人', visitor_pass: '访客通行证请设置有效期',
    login_failed: '登录失败', too_big: '文件太大（最大 {kib} KiB）', direction_in: '进', direction_out: '出', note_required: '请填写处理说明',
  },
  en: {
    title: 'Guard console', user: 'User', password: 'Password', login: 'Log in', logout: 'Log out',
    tab_alarms: 'Alarms', tab_events: 'Events', tab_doors: 'Doors', tab_roster: 'Roster', tab_users: 'Users',
    live_alarms: 'Live alarms', live_passes: 'Live passes', no_alarms: 'No alarms',
    from: 'From', to: 'To', kind: 'Kind', door: 'Door', person: 'Person', plate: 'Plate',
    person_ph: 'name or id', plate_ph: 'e.g. 京A12345', search: 'Search', clear: 'Clear', time: 'Time',
    who: 'Person / credential', result: 'Result', snapshot: 'Snapshot', no_records: 'No records', more: 'More',
    roster_ph: 'name, id, card or plate', add_person: 'Add person', name: 'Name', group: 'Group',
    credentials: 'Credentials', valid_from: 'Valid from', valid_until: 'Valid until', faces: 'Faces', tags: 'Tags',
    add_user: 'Add or change a user', role: 'Role', source: 'Defined in', role_guard: 'Guard', role_admin: 'Admin',
    password_ph: 'at least 8 characters; empty keeps it', save: 'Save', cancel: 'Cancel', ack: 'Acknowledge',
    ack_title: 'Acknowledge alarm', ack_note: 'Note', ack_note_ph: 'e.g. checked on site, false alarm', dismiss: 'Dismiss',
    open_door: 'Open remotely', open_confirm: 'Open "{door}" remotely? This is journaled with your name.',
    open_title: 'Remote open', opened: 'Open command sent: {door}', acked: 'Alarm acknowledged',
    release_hold: 'Release elevator hold', released: 'Released: {door}',
    online: 'online', offline: 'offline', unknown: 'unknown', all: 'All', any_door: 'All doors',
    conn_live: 'Live', conn_connecting: 'Connecting…', conn_lost: 'Connection lost, reconnecting…',
    count: 'count', escalated: 'escalated', cleared_unacked: 'Cleared (not acknowledged)', acked_by: 'acknowledged by {by}',
    raised_at: 'raised', edit: 'Edit', delete: 'Delete', delete_confirm: 'Delete "{name}"?',
    person_title: 'Person', add_credential: 'Add credential', face_photo: 'Face photo (JPEG)',
    face_enrolled: 'Face photo enrolled', saved: 'Saved', deleted: 'Deleted', sound_on: 'Sound on', sound_off: 'Sound off',
    config_user: 'config file', console_user: 'console', none: 'none', granted: 'granted', refused: 'refused',
    gap: 'Away too long: the alarm list was reloaded', by: 'by', visitor_pass: 'Give visitor passes an expiry',
    login_failed: 'Login failed', too_big: 'too large (at most {kib} KiB)', direction_in: 'in', direction_out: 'out', note_required: 'Write a note',
  },
};

/**
 * Errors the page words itself (in Chinese); others show the gateway's message.
 * @type {Record<Lang, Record<string, string>>}
 */
const ERRORS = {
  zh: {
    bad_credentials: '用户名或密码错误', rate_limited: '登录失败次数过多，请 {retry} 秒后再试',
    faces_disabled: '本网关未启用人脸识别（配置 [faces]），无法录入照片', too_large: '文件太大',
    unauthenticated: '请先登录', forbidden: '没有权限', unsupported_media_type: '文件格式不对（需要 JPEG）',
    network: '无法连接网关', unavailable: '网关正在停止',
  },
  en: { network: 'cannot reach the gateway' },
};

/** @returns {Lang} */
function savedLang() {
  try {
    return localStorage.getItem('gw.lang') === 'en' ? 'en' : 'zh';
  } catch (e) {
    return 'zh'; // no storage (outside a browser)
  }
}

/** @type {Lang} */
let lang = savedLang();

/** The language shown. */
export function getLang() {
  return lang;
}

/**
 * Switches the language and remembers it.
 * @param {Lang} l
 */
export function setLang(l) {
  lang = l;
  localStorage.setItem('gw.lang', lang);
}

/**
 * One of the page's words, with `{name}` placeholders filled in.
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function t(key, vars) {
  let s = (L[lang] && L[lang][key]) || L.zh[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', String(v));
  return s;
}

/**
 * An error the page words itself, or undefined.
 * @param {string | undefined} code
 * @returns {string | undefined}
 */
export function errorText(code) {
  return code ? ERRORS[lang][code] : undefined;
}

/** @type {Partial<Record<Lang, Partial<Labels>>>} */
let labels = {};

/**
 * Fetches /assets/labels.json (public, no login). Never fails: without it the
 * page shows the keys themselves.
 * @returns {Promise<void>}
 */
export async function loadLabels() {
  try {
    const r = await fetch('/assets/labels.json', { credentials: 'same-origin' });
    if (!r.ok) throw new Error(`labels.json: HTTP ${r.status}`);
    labels = /** @type {Partial<Record<Lang, Partial<Labels>>>} */ (await r.json());
  } catch (e) {
    console.error(e);
  }
}

/**
 * The domain words of the language shown.
 * @returns {Partial<Labels>}
 */
export function words() {
  return labels[lang] || {};
}

/**
 * The word for `key` in one of the label tables, else the key itself.
 * @param {NameTable} table
 * @param {string | null | undefined} key
 * @returns {string}
 */
export function name(table, key) {
  const shown = labels[lang];
  const words = shown && shown[table];
  return (words && key && words[key]) || key || '';
}

/**
 * The keys of one label table, in the gateway's order (from the Chinese table,
 * as the page always had).
 * @param {NameTable} table
 * @returns {string[]}
 */
export function tableKeys(table) {
  return Object.keys((labels.zh && labels.zh[table]) || {});
}
