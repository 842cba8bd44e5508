// The guards' console. Plain JavaScript, no build step: the gateway serves this
// file as it is. Everything shown is built with DOM nodes and textContent (never
// HTML from data). Live records come over Server-Sent Events from /api/live; the
// last seq seen is kept, so a reconnect (also after a gateway restart) resumes
// where the page left off.
'use strict';

// ---------------------------------------------------------------- labels
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

const NAMES = {
  zh: {
    alarm: {
      door_forced: '门被强行打开', door_held_open: '门长时间未关', tailgating: '尾随进入',
      ebike_in_elevator: '电动车进电梯', watchlist_face: '黑名单人员', unknown_face: '陌生人',
      device_offline: '设备离线', tamper: '设备防拆', smoke: '烟雾报警', gas: '燃气报警',
      fence_intrusion: '周界入侵', sos_call: '一键求助', welfare_no_activity: '独居老人无活动',
      data_loss: '数据丢失', buffer_high: '上传积压',
    },
    severity: { critical: '紧急', major: '重要', minor: '一般', info: '提示' },
    state: { raised: '新告警', acked: '已确认', cleared: '已恢复', escalated: '已升级' },
    kind: { access: '人员通行', vehicle: '车辆', tag: '电动车标签', face: '人脸', input: '输入/传感器', device: '设备', system: '系统' },
    reason: {
      granted: '通过', unknown_credential: '未登记凭证', expired: '已过期', not_yet_valid: '未生效',
      outside_schedule: '不在通行时段', not_allowed_here: '无此门权限', watchlist: '黑名单',
      anti_passback: '防潜回', stale_read: '延迟读卡', uncertain: '人脸不确定', no_usable_face: '人脸不清晰',
    },
    door: { closed: '关闭', open: '打开', held: '长时间未关', forced: '被强行打开' },
    doorkind: { door: '门', gate: '大门', turnstile: '闸机', barrier: '道闸', elevator: '电梯', lobby: '大堂' },
    input: {
      door_contact: ['门磁', '门开', '门关'], exit_request: ['出门按钮', '按下', '松开'],
      vehicle_loop: ['地感', '有车', '无车'], gate_open: ['闸门', '打开', '关闭'],
    },
    sensor: { smoke: '烟雾', gas: '燃气', fence_intrusion: '周界', sos: '一键求助', ebike_detected: '电动车检测' },
    presence: { arrived: '到达', moved: '移动', departed: '离开' },
    active: ['报警', '恢复'],
    group: { resident: '住户', staff: '员工', visitor: '访客', watchlist: '黑名单' },
    cred: { card: '门卡', tag: '电动车标签', plate: '车牌', face: '人脸', pin: '密码', qr: '二维码', remote: '远程' },
    action: {
      decision: '', door_release: '开门', input_changed: '输入变化', sensor_changed: '传感器', tag_seen: '标签',
      passage: '通过人数', online: '上线', offline: '离线', tamper: '防拆', power: '电源', device_error: '设备错误',
      person_upserted: '人员更新', person_deleted: '人员删除', gateway_started: '网关启动', gateway_stopped: '网关停止',
      console_action: '控制台操作',
    },
  },
  en: {
    alarm: {
      door_forced: 'Door forced', door_held_open: 'Door held open', tailgating: 'Tailgating',
      ebike_in_elevator: 'E-bike in elevator', watchlist_face: 'Watchlist person', unknown_face: 'Unknown face',
      device_offline: 'Device offline', tamper: 'Tamper', smoke: 'Smoke', gas: 'Gas',
      fence_intrusion: 'Fence intrusion', sos_call: 'SOS call', welfare_no_activity: 'No activity (welfare)',
      data_loss: 'Data loss', buffer_high: 'Upload backlog',
    },
    severity: { critical: 'critical', major: 'major', minor: 'minor', info: 'info' },
    state: { raised: 'raised', acked: 'acknowledged', cleared: 'cleared', escalated: 'escalated' },
    kind: { access: 'Access', vehicle: 'Vehicle', tag: 'E-bike tag', face: 'Face', input: 'Input/sensor', device: 'Device', system: 'System' },
    reason: {
      granted: 'granted', unknown_credential: 'unknown credential', expired: 'expired', not_yet_valid: 'not yet valid',
      outside_schedule: 'outside schedule', not_allowed_here: 'not allowed here', watchlist: 'watchlist',
      anti_passback: 'anti-passback', stale_read: 'late read', uncertain: 'face uncertain', no_usable_face: 'no usable face',
    },
    door: { closed: 'closed', open: 'open', held: 'held open', forced: 'forced' },
    doorkind: { door: 'door', gate: 'gate', turnstile: 'turnstile', barrier: 'barrier', elevator: 'elevator', lobby: 'lobby' },
    input: {
      door_contact: ['door contact', 'open', 'closed'], exit_request: ['exit button', 'pressed', 'released'],
      vehicle_loop: ['vehicle loop', 'vehicle', 'clear'], gate_open: ['gate', 'open', 'closed'],
    },
    sensor: { smoke: 'smoke', gas: 'gas', fence_intrusion: 'fence', sos: 'SOS button', ebike_detected: 'e-bike detector' },
    presence: { arrived: 'arrived', moved: 'moved', departed: 'left' },
    active: ['alarm', 'normal'],
    group: { resident: 'resident', staff: 'staff', visitor: 'visitor', watchlist: 'watchlist' },
    cred: { card: 'card', tag: 'tag', plate: 'plate', face: 'face', pin: 'PIN', qr: 'QR', remote: 'remote' },
    action: {
      decision: '', door_release: 'door released', input_changed: 'input', sensor_changed: 'sensor', tag_seen: 'tag seen',
      passage: 'passage', online: 'online', offline: 'offline', tamper: 'tamper', power: 'power', device_error: 'device error',
      person_upserted: 'person saved', person_deleted: 'person deleted', gateway_started: 'gateway started',
      gateway_stopped: 'gateway stopped', console_action: 'console',
    },
  },
};

// Errors the page words itself (in Chinese); others show the gateway's message.
const ERRORS = {
  zh: {
    bad_credentials: '用户名或密码错误', rate_limited: '登录失败次数过多，请 {retry} 秒后再试',
    faces_disabled: '本网关未启用人脸识别（配置 [faces]），无法录入照片', too_large: '文件太大',
    unauthenticated: '请先登录', forbidden: '没有权限', unsupported_media_type: '文件格式不对（需要 JPEG）',
    network: '无法连接网关', unavailable: '网关正在停止',
  },
  en: { network: 'cannot reach the gateway' },
};

const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, info: 3 };
const PASS_KINDS = ['access', 'vehicle', 'tag', 'face'];

let lang = localStorage.getItem('gw.lang') === 'en' ? 'en' : 'zh';
const t = (key, vars) => {
  let s = (L[lang] && L[lang][key]) || L.zh[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
};
const name = (table, key) => (NAMES[lang][table] && NAMES[lang][table][key]) || key || '';

// ---------------------------------------------------------------- helpers
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fmtTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (isNaN(d)) return ts;
  const pad = (n) => String(n).padStart(2, '0');
  const today = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function localInputToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? '' : d.toISOString();
}

function isoToLocalInput(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (isNaN(d)) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

let toastTimer = null;
function toast(msg, bad) {
  const box = $('#toast');
  box.textContent = msg;
  box.classList.toggle('bad', !!bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

// ---------------------------------------------------------------- API
const state = {
  me: null,
  doors: new Map(),
  alarms: new Map(), // alarm id -> { rec, cleared }
  feed: [],
  es: null,
  lastSeq: null,
  sound: localStorage.getItem('gw.sound') !== 'off',
  eventsNext: null,
  personsNext: null,
  reconnectTimer: null,
};

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body, contentType) {
  const headers = {};
  if (state.me && method !== 'GET') headers['X-CSRF-Token'] = state.me.csrf;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers['Content-Type'] = contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', ERRORS[lang].network);
  }
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = (data && data.error) || {};
    if (r.status === 401 && path !== '/api/login') showLogin();
    const worded = ERRORS[lang][err.code];
    const message = worded
      ? worded.replace('{retry}', r.headers.get('Retry-After') || '')
      : err.message || r.statusText;
    throw new ApiError(r.status, err.code || 'http_' + r.status, message);
  }
  return data;
}

// ---------------------------------------------------------------- language
function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll('[data-i18n-ph]').forEach((e) => { e.placeholder = t(e.dataset.i18nPh); });
  document.querySelectorAll('.lang-switch').forEach((b) => { b.textContent = lang === 'zh' ? 'English' : '中文'; });
  $('#sound').textContent = state.sound ? t('sound_on') : t('sound_off');
  $('#sound').classList.toggle('off', !state.sound);
  if (state.me) $('#whoami').textContent = `${state.me.user} (${t('role_' + state.me.role)})`;
  fillSearchSelects();
  renderAlarms();
  renderFeed();
  renderDoors();
  setConn($('#conn').dataset.state || 'connecting');
}

document.querySelectorAll('.lang-switch').forEach((b) => b.addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('gw.lang', lang);
  applyLang();
}));

// ---------------------------------------------------------------- sound
let audio = null;
function beep(times) {
  if (!state.sound) return;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
    for (let i = 0; i < times; i++) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = 'square';
      o.frequency.value = 880;
      g.gain.value = 0.08;
      o.connect(g).connect(audio.destination);
      const start = audio.currentTime + i * 0.35;
      o.start(start);
      o.stop(start + 0.2);
    }
  } catch (e) { /* no audio device: the red card is the alarm */ }
}

$('#sound').addEventListener('click', () => {
  state.sound = !state.sound;
  localStorage.setItem('gw.sound', state.sound ? 'on' : 'off');
  applyLang();
  if (state.sound) beep(1);
});

// ---------------------------------------------------------------- login
function showLogin(message) {
  closeLive();
  setConn('connecting');
  state.me = null;
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message || '';
  $('#login-password').value = '';
  $('#login-user').focus();
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#login-error').textContent = '';
  $('#login-submit').disabled = true;
  try {
    state.me = await api('POST', '/api/login', {
      user: $('#login-user').value.trim(),
      password: $('#login-password').value,
    });
    $('#login-password').value = '';
    await showApp();
  } catch (e) {
    $('#login-error').textContent = `${t('login_failed')}: ${e.message}`;
  } finally {
    $('#login-submit').disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  try { await api('POST', '/api/logout'); } catch (e) { /* logged out anyway */ }
  showLogin();
});

async function showApp() {
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  document.querySelectorAll('[data-admin]').forEach((e) => { e.hidden = state.me.role !== 'admin'; });
  applyLang();
  await Promise.all([loadDoors(), loadOpenAlarms(), loadFeed()]);
  connectLive();
}

// ---------------------------------------------------------------- tabs
let currentTab = 'alarms';
$('#tabs').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-tab]');
  if (!b) return;
  showTab(b.dataset.tab);
});

function showTab(tab) {
  currentTab = tab;
  document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === tab));
  document.querySelectorAll('main .tab').forEach((s) => { s.hidden = s.id !== 'tab-' + tab; });
  if (tab === 'doors') loadDoors();
  if (tab === 'events' && !$('#event-rows').children.length) searchEvents(false);
  if (tab === 'roster') loadPersons(false);
  if (tab === 'users') loadUsers();
}

// ---------------------------------------------------------------- doors
function doorName(id) {
  const d = state.doors.get(id);
  return d ? d.name : id;
}

async function loadDoors() {
  try {
    const r = await api('GET', '/api/doors');
    state.doors = new Map(r.doors.map((d) => [d.id, d]));
    renderDoors();
    fillSearchSelects();
  } catch (e) { /* shown by the connection state */ }
}

let doorRefresh = null;
function refreshDoorsSoon() {
  if (doorRefresh) return;
  doorRefresh = setTimeout(() => { doorRefresh = null; loadDoors(); }, 300);
}

let doorsShown = '';
function renderDoors() {
  const grid = $('#door-grid');
  if (!grid) return;
  // Redraw only on a change, so that a button is not replaced under a finger.
  const key = lang + JSON.stringify([...state.doors.values()]);
  if (key === doorsShown) return;
  doorsShown = key;
  grid.replaceChildren();
  for (const d of state.doors.values()) {
    const link = d.online === true ? 'online' : d.online === false ? 'offline' : 'unknown';
    grid.append(el('div', { class: `door-card door-${d.status}`, dataset: { door: d.id } },
      el('div', { class: 'door-head' },
        el('strong', { text: d.name }),
        el('span', { class: `pill link-${link}`, text: t(link) })),
      el('div', { class: 'muted', text: `${d.zone} · ${name('doorkind', d.kind)}` }),
      el('div', { class: 'door-status', text: name('door', d.status) }),
      el('div', { class: 'row' },
        el('button', { class: 'primary open-door', type: 'button', text: t('open_door'), onclick: () => confirmOpen(d) }),
        d.kind === 'elevator'
          ? el('button', { type: 'button', class: 'link', text: t('release_hold'), onclick: () => releaseHold(d) })
          : null)));
  }
}

function confirmOpen(d) {
  modal({
    title: t('open_title'),
    body: [el('p', { text: t('open_confirm', { door: d.name }) })],
    ok: t('open_door'),
    danger: true,
    onOk: async () => {
      await api('POST', `/api/doors/${encodeURIComponent(d.id)}/open`);
      toast(t('opened', { door: d.name }));
      refreshDoorsSoon();
    },
  });
}

async function releaseHold(d) {
  try {
    await api('POST', `/api/doors/${encodeURIComponent(d.id)}/release-hold`);
    toast(t('released', { door: d.name }));
  } catch (e) { toast(e.message, true); }
}

setInterval(() => { if (state.me && currentTab === 'doors') loadDoors(); }, 5000);

// ---------------------------------------------------------------- alarms
async function loadOpenAlarms() {
  try {
    const r = await api('GET', '/api/alarms?state=open');
    const open = new Set();
    for (const a of r.alarms) {
      open.add(a.alarm);
      const known = state.alarms.get(a.alarm);
      state.alarms.set(a.alarm, { rec: a, cleared: false, via: known ? known.via : 'load' });
    }
    // Open ones the server no longer has were cleared while away: keep those
    // never acknowledged, so that a guard still sees them.
    for (const [id, a] of state.alarms) {
      if (!open.has(id)) {
        if (a.rec.state === 'acked' || a.cleared) state.alarms.delete(id);
        else a.cleared = true;
      }
    }
    renderAlarms();
  } catch (e) { /* retried on the next connect */ }
}

function applyAlarm(rec) {
  const known = state.alarms.get(rec.alarm);
  if (rec.state === 'cleared') {
    if (!known) return;
    if (known.rec.state === 'acked' || known.rec.ack) state.alarms.delete(rec.alarm);
    else { known.cleared = true; known.rec = Object.assign({}, known.rec, { count: rec.count }); }
  } else {
    state.alarms.set(rec.alarm, { rec, cleared: false, via: known ? known.via : 'live' });
    const isNew = !known || (rec.state === 'escalated' && known.rec.state !== 'escalated');
    if (isNew && rec.state !== 'acked') {
      if (rec.severity === 'critical') beep(3);
      else if (rec.severity === 'major') beep(1);
    }
  }
  renderAlarms();
}

function sortedAlarms() {
  return [...state.alarms.values()].sort((a, b) => {
    // Not yet handled first; then by severity, then oldest first.
    const ha = a.rec.state === 'acked' || a.cleared ? 1 : 0;
    const hb = b.rec.state === 'acked' || b.cleared ? 1 : 0;
    if (ha !== hb) return ha - hb;
    const s = SEVERITY_RANK[a.rec.severity] - SEVERITY_RANK[b.rec.severity];
    if (s) return s;
    return String(a.rec.raised_at).localeCompare(String(b.rec.raised_at));
  });
}

function thumb(snap) {
  if (!snap || !snap.sha256) return null;
  const src = `/api/snapshots/${snap.sha256}`;
  return el('img', {
    class: 'thumb', src, alt: t('snapshot'), loading: 'lazy',
    onclick: () => modal({ title: t('snapshot'), body: [el('img', { class: 'big', src, alt: '' })], ok: 'OK', noCancel: true }),
  });
}

function renderAlarms() {
  const list = $('#alarm-list');
  if (!list) return;
  list.replaceChildren();
  const items = sortedAlarms();
  let pending = 0;
  for (const a of items) {
    const r = a.rec;
    const handled = r.state === 'acked' || a.cleared;
    if (!handled) pending++;
    const place = [r.door ? doorName(r.door) : null, r.zone].filter(Boolean).join(' · ');
    const who = r.person ? (r.person.name || r.person.id) : null;
    const tags = [];
    if (r.state === 'escalated') tags.push(el('span', { class: 'pill warn', text: `${t('escalated')} ×${r.escalations}` }));
    if (r.count > 1) tags.push(el('span', { class: 'pill', text: `${t('count')} ${r.count}` }));
    if (a.cleared) tags.push(el('span', { class: 'pill ok', text: t('cleared_unacked') }));
    if (r.ack) tags.push(el('span', { class: 'pill ok', text: t('acked_by', { by: r.ack.by.replace(/^console\//, '') }) }));
    list.append(el('li', {
      class: `alarm sev-${r.severity}${handled ? ' handled' : ''}`,
      // `via` says whether it came over the live feed or with the initial list.
      dataset: { alarm: r.alarm, type: r.type, state: a.cleared ? 'cleared' : r.state, via: a.via },
    },
      thumb(r.snapshot),
      el('div', { class: 'alarm-main' },
        el('div', { class: 'alarm-head' },
          el('span', { class: `sev sev-${r.severity}`, text: name('severity', r.severity) }),
          el('strong', { class: 'alarm-type', text: name('alarm', r.type) }),
          ...tags),
        el('div', { class: 'alarm-msg', text: r.message }),
        el('div', { class: 'muted' },
          [place, who, r.device].filter(Boolean).join(' · '),
          ' · ', `${t('raised_at')} ${fmtTime(r.raised_at)}`),
        r.ack && r.ack.note ? el('div', { class: 'muted note', text: `“${r.ack.note}”` }) : null),
      el('div', { class: 'alarm-actions' },
        a.cleared
          ? el('button', { type: 'button', class: 'dismiss', text: t('dismiss'), onclick: () => { state.alarms.delete(r.alarm); renderAlarms(); } })
          : r.state !== 'acked'
            ? el('button', { type: 'button', class: 'primary ack', text: t('ack'), onclick: () => ackAlarm(r) })
            : null)));
  }
  $('#no-alarms').hidden = items.length > 0;
  const badge = $('#alarm-count');
  badge.textContent = pending;
  badge.hidden = pending === 0;
}

function ackAlarm(r) {
  const note = el('textarea', { id: 'ack-note', rows: 3, maxlength: 1000, placeholder: t('ack_note_ph') });
  modal({
    title: `${t('ack_title')}: ${name('alarm', r.type)}`,
    body: [el('p', { text: r.message }), el('label', {}, el('span', { text: t('ack_note') }), note)],
    ok: t('ack'),
    focus: note,
    onOk: async () => {
      if (!note.value.trim()) throw new Error(t('note_required'));
      await api('POST', `/api/alarms/${r.alarm}/ack`, { note: note.value.trim() });
      toast(t('acked'));
    },
  });
}

// ---------------------------------------------------------------- live feed
function isPass(rec) {
  return PASS_KINDS.includes(rec.kind) && (rec.action === 'decision' || rec.action === 'door_release');
}

function whoOf(rec) {
  const parts = [];
  if (rec.person) parts.push(rec.person.name || rec.person.id);
  if (rec.credential) {
    const c = rec.credential;
    if (c.type === 'remote') parts.push(`${name('cred', 'remote')} ${c.value.replace(/^console\//, '')}`);
    else if (c.type === 'face' && rec.person) {
      if (rec.similarity !== undefined) parts.push(`${name('cred', 'face')} ${Math.round(rec.similarity * 100)}%`);
    } else parts.push(`${name('cred', c.type)} ${c.value}`);
  }
  if (!parts.length && rec.by) parts.push(rec.by);
  return parts.join(' · ');
}

function resultOf(rec) {
  if (rec.decision) {
    const ok = rec.decision.granted;
    return el('span', { class: ok ? 'granted' : 'refused', text: ok ? `✔ ${t('granted')}` : `✘ ${name('reason', rec.decision.reason)}` });
  }
  const bits = [name('action', rec.action)];
  const words = NAMES[lang];
  if (rec.input) {
    const w = words.input[rec.input.input] || [rec.input.input, 'on', 'off'];
    bits.push(`${w[0]} ${rec.input.active ? w[1] : w[2]}`);
  }
  if (rec.sensor) {
    bits.push(`${words.sensor[rec.sensor.sensor] || rec.sensor.sensor} ${rec.sensor.active ? words.active[0] : words.active[1]}`);
  }
  if (rec.tag) bits.push(words.presence[rec.tag.presence] || rec.tag.presence);
  if (rec.count !== undefined) bits.push(String(rec.count));
  if (rec.detail) bits.push(rec.detail);
  return el('span', { class: 'muted', text: bits.filter(Boolean).join(': ') });
}

async function loadFeed() {
  try {
    const r = await api('GET', '/api/events?limit=30&kind=' + PASS_KINDS.join(','));
    state.feed = r.records.filter(isPass);
    renderFeed();
  } catch (e) { /* empty feed */ }
}

function applyEvent(rec) {
  if (rec.door || rec.kind === 'device') refreshDoorsSoon();
  if (!isPass(rec)) return;
  // A replay after a reconnect may bring records the list already has.
  if (state.feed.some((f) => f.seq === rec.seq)) return;
  state.feed.unshift(rec);
  state.feed.sort((a, b) => b.seq - a.seq);
  state.feed.length = Math.min(state.feed.length, 50);
  renderFeed();
}

function renderFeed() {
  const list = $('#live-feed');
  if (!list) return;
  list.replaceChildren(...state.feed.map((rec) => el('li', { class: 'feed-item', dataset: { seq: rec.seq } },
    thumb(rec.snapshot),
    el('div', {},
      el('div', {}, el('span', { class: 'muted', text: fmtTime(rec.ts) }), ' ',
        el('strong', { text: rec.door ? doorName(rec.door) : rec.device }),
        rec.direction ? ` (${t('direction_' + rec.direction)})` : ''),
      el('div', { text: whoOf(rec) }),
      resultOf(rec)))));
}

// ---------------------------------------------------------------- live connection
function setConn(s) {
  const c = $('#conn');
  c.dataset.state = s;
  c.textContent = t(s === 'live' ? 'conn_live' : s === 'lost' ? 'conn_lost' : 'conn_connecting');
}

function remember(seq) {
  const n = Number(seq);
  if (!Number.isFinite(n)) return;
  if (state.lastSeq === null || n > state.lastSeq) {
    state.lastSeq = n;
    sessionStorage.setItem('gw.lastSeq', String(n));
  }
}

function closeLive() {
  if (state.es) { state.es.close(); state.es = null; }
  clearTimeout(state.reconnectTimer);
}

function connectLive() {
  closeLive();
  if (state.lastSeq === null) {
    const saved = Number(sessionStorage.getItem('gw.lastSeq'));
    if (sessionStorage.getItem('gw.lastSeq') !== null && Number.isFinite(saved)) state.lastSeq = saved;
  }
  const url = '/api/live' + (state.lastSeq !== null ? `?since=${state.lastSeq}` : '');
  setConn('connecting');
  const es = new EventSource(url);
  state.es = es;
  let first = true;
  es.addEventListener('hello', (e) => {
    remember(e.lastEventId);
    setConn('live');
    // After a reconnect the lists are refreshed; the replayed records follow.
    if (!first) { loadOpenAlarms(); loadDoors(); }
    first = false;
  });
  es.addEventListener('gap', (e) => {
    state.lastSeq = null;
    remember(e.lastEventId);
    setConn('live');
    toast(t('gap'));
    loadOpenAlarms();
    loadFeed();
    loadDoors();
  });
  es.addEventListener('alarm', (e) => {
    remember(e.lastEventId);
    try { applyAlarm(JSON.parse(e.data)); } catch (err) { console.error(err); }
  });
  es.addEventListener('event', (e) => {
    remember(e.lastEventId);
    try { applyEvent(JSON.parse(e.data)); } catch (err) { console.error(err); }
  });
  es.onerror = () => {
    setConn('lost');
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (the gateway answered with an error while
      // restarting, or the session ended): check the session, then reconnect.
      state.reconnectTimer = setTimeout(async () => {
        try {
          state.me = await api('GET', '/api/me');
          connectLive();
        } catch (err) {
          if (err.status !== 401) state.reconnectTimer = setTimeout(connectLive, 2000);
        }
      }, 1500);
    }
  };
}

// ---------------------------------------------------------------- events search
function fillSearchSelects() {
  const kind = $('#search-kind');
  if (kind) {
    const v = kind.value;
    kind.replaceChildren(el('option', { value: '', text: t('all') }),
      ...Object.keys(NAMES.zh.kind).map((k) => el('option', { value: k, text: name('kind', k) })));
    kind.value = v;
  }
  const door = $('#search-door');
  if (door) {
    const v = door.value;
    door.replaceChildren(el('option', { value: '', text: t('any_door') }),
      ...[...state.doors.values()].map((d) => el('option', { value: d.id, text: d.name })));
    door.value = v;
  }
}

function eventRow(rec) {
  return el('tr', { dataset: { seq: rec.seq } },
    el('td', { text: fmtTime(rec.ts) }),
    el('td', {}, name('kind', rec.kind), rec.action !== 'decision' && name('action', rec.action) ? el('div', { class: 'muted', text: name('action', rec.action) }) : null),
    el('td', { text: rec.door ? doorName(rec.door) + (rec.direction ? ` (${t('direction_' + rec.direction)})` : '') : rec.device }),
    el('td', { text: whoOf(rec) }),
    el('td', {}, resultOf(rec), rec.by ? el('div', { class: 'muted', text: `${t('by')}: ${rec.by}` }) : null),
    el('td', {}, thumb(rec.snapshot)));
}

let searchSeq = 0;
async function searchEvents(more) {
  const mine = ++searchSeq;
  const f = $('#search-form');
  const q = new URLSearchParams();
  const from = localInputToIso(f.from.value);
  const to = localInputToIso(f.to.value);
  if (from) q.set('from', from);
  if (to) q.set('to', to);
  for (const k of ['kind', 'door', 'person', 'plate']) if (f[k].value.trim()) q.set(k, f[k].value.trim());
  q.set('limit', '50');
  if (more && state.eventsNext) q.set('before', state.eventsNext.before);
  $('#search-error').textContent = '';
  try {
    const r = await api('GET', '/api/events?' + q.toString());
    if (mine !== searchSeq) return; // a newer search has started
    const rows = r.records.map(eventRow);
    if (more) $('#event-rows').append(...rows);
    else $('#event-rows').replaceChildren(...rows);
    state.eventsNext = r.next;
    $('#events-more').hidden = !r.next;
    $('#events-empty').hidden = $('#event-rows').children.length > 0;
  } catch (e) {
    $('#search-error').textContent = e.message;
  }
}

$('#search-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchEvents(false); });
$('#search-form').addEventListener('reset', () => setTimeout(() => searchEvents(false), 0));
$('#events-more').addEventListener('click', () => searchEvents(true));

// ---------------------------------------------------------------- roster
async function loadPersons(more) {
  const q = new URLSearchParams();
  const text = $('#roster-search').q.value.trim();
  if (text) q.set('q', text);
  q.set('limit', '100');
  if (more && state.personsNext) q.set('after', state.personsNext);
  try {
    const r = await api('GET', '/api/persons?' + q.toString());
    const rows = r.persons.map(personRow);
    if (more) $('#person-rows').append(...rows);
    else $('#person-rows').replaceChildren(...rows);
    state.personsNext = r.next_after;
    $('#persons-more').hidden = !r.next_after;
  } catch (e) { toast(e.message, true); }
}

function personRow(p) {
  return el('tr', { dataset: { person: p.id } },
    el('td', { text: p.id }),
    el('td', { text: p.name }),
    el('td', { text: name('group', p.group) }),
    el('td', { text: p.credentials.map((c) => `${name('cred', c.type)} ${c.value}`).join(', ') || t('none') }),
    el('td', { text: p.valid_until ? fmtTime(p.valid_until) : '' }),
    el('td', { text: String(p.faces || 0) }),
    el('td', { class: 'nowrap' },
      el('button', { type: 'button', class: 'link', text: t('edit'), onclick: () => editPerson(p) }),
      el('button', { type: 'button', class: 'link danger', text: t('delete'), onclick: () => deletePerson(p) })));
}

$('#roster-search').addEventListener('submit', (ev) => { ev.preventDefault(); loadPersons(false); });
$('#persons-more').addEventListener('click', () => loadPersons(true));
$('#person-add').addEventListener('click', () => editPerson(null));

function credRow(c) {
  const type = el('select', { class: 'cred-type' },
    ...['card', 'plate', 'tag', 'pin', 'qr'].map((k) => el('option', { value: k, text: name('cred', k) })));
  type.value = (c && c.type) || 'card';
  const value = el('input', { class: 'cred-value', value: (c && c.value) || '' });
  const row = el('div', { class: 'cred-row' }, type, value,
    el('button', { type: 'button', class: 'link danger', text: '✕', onclick: () => row.remove() }));
  return row;
}

function editPerson(p) {
  const isNew = !p;
  const f = {
    id: el('input', { name: 'id', value: p ? p.id : '', required: true, readonly: !isNew }),
    name: el('input', { name: 'name', value: p ? p.name : '', required: true }),
    group: el('select', { name: 'group' },
      ...['resident', 'staff', 'visitor', 'watchlist'].map((g) => el('option', { value: g, text: name('group', g) }))),
    tags: el('input', { name: 'tags', value: p ? (p.tags || []).join(', ') : '' }),
    from: el('input', { name: 'valid_from', type: 'datetime-local', value: p ? isoToLocalInput(p.valid_from) : '' }),
    until: el('input', { name: 'valid_until', type: 'datetime-local', value: p ? isoToLocalInput(p.valid_until) : '' }),
    photo: el('input', { name: 'photo', type: 'file', accept: 'image/jpeg' }),
  };
  f.group.value = p ? p.group : 'resident';
  const creds = el('div', { class: 'creds' }, ...(p ? p.credentials : []).filter((c) => c.type !== 'face').map(credRow));
  const label = (key, input) => el('label', {}, el('span', { text: t(key) }), input);
  modal({
    title: t('person_title'),
    wide: true,
    body: [
      el('div', { class: 'form-grid' },
        label('ID', f.id), label('name', f.name), label('group', f.group), label('tags', f.tags),
        label('valid_from', f.from), label('valid_until', f.until)),
      el('div', {}, el('span', { class: 'label', text: t('credentials') }), creds,
        el('button', { type: 'button', class: 'link', text: '+ ' + t('add_credential'), onclick: () => creds.append(credRow(null)) })),
      label('face_photo', f.photo),
      el('p', { class: 'muted', text: `${t('faces')}: ${p ? p.faces || 0 : 0}` }),
    ],
    ok: t('save'),
    onOk: async () => {
      if (f.group.value === 'visitor' && !f.until.value) throw new Error(t('visitor_pass'));
      const person = {
        name: f.name.value.trim(),
        group: f.group.value,
        tags: f.tags.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
        credentials: [...creds.querySelectorAll('.cred-row')]
          .map((r) => ({ type: r.querySelector('.cred-type').value, value: r.querySelector('.cred-value').value.trim() }))
          .filter((c) => c.value),
      };
      const from = localInputToIso(f.from.value);
      const until = localInputToIso(f.until.value);
      if (from) person.valid_from = from;
      if (until) person.valid_until = until;
      const id = f.id.value.trim();
      const file = f.photo.files[0];
      if (file && file.size > state.me.max_upload_kib * 1024) {
        throw new Error(`${t('face_photo')}: ${t('too_big', { kib: state.me.max_upload_kib })}`);
      }
      await api('PUT', `/api/persons/${encodeURIComponent(id)}`, person);
      if (file) {
        try {
          await api('POST', `/api/persons/${encodeURIComponent(id)}/faces`, file, 'image/jpeg');
          toast(t('face_enrolled'));
        } catch (e) {
          loadPersons(false);
          // The person is saved; the photo was refused: say why, keep the dialog.
          f.id.readOnly = true;
          throw new Error(`${t('face_photo')}: ${e.message}`);
        }
      } else {
        toast(t('saved'));
      }
      loadPersons(false);
    },
  });
}

function deletePerson(p) {
  modal({
    title: t('delete'),
    body: [el('p', { text: t('delete_confirm', { name: `${p.name} (${p.id})` }) })],
    ok: t('delete'),
    danger: true,
    onOk: async () => {
      await api('DELETE', `/api/persons/${encodeURIComponent(p.id)}`);
      toast(t('deleted'));
      loadPersons(false);
    },
  });
}

// ---------------------------------------------------------------- users
async function loadUsers() {
  try {
    const users = await api('GET', '/api/users');
    $('#user-rows').replaceChildren(...users.map((u) => el('tr', { dataset: { user: u.name } },
      el('td', { text: u.name }),
      el('td', { text: t('role_' + u.role) }),
      el('td', { text: t(u.source === 'config' ? 'config_user' : 'console_user') }),
      el('td', {}, u.source === 'console' && u.name !== state.me.user
        ? el('button', {
          type: 'button', class: 'link danger', text: t('delete'),
          onclick: () => modal({
            title: t('delete'), body: [el('p', { text: t('delete_confirm', { name: u.name }) })], ok: t('delete'), danger: true,
            onOk: async () => { await api('DELETE', `/api/users/${encodeURIComponent(u.name)}`); loadUsers(); },
          }),
        })
        : null))));
  } catch (e) { toast(e.message, true); }
}

$('#user-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  $('#user-error').textContent = '';
  const body = { role: f.role.value };
  if (f.password.value) body.password = f.password.value;
  try {
    await api('PUT', `/api/users/${encodeURIComponent(f.name.value.trim())}`, body);
    f.reset();
    toast(t('saved'));
    loadUsers();
  } catch (e) { $('#user-error').textContent = e.message; }
});

// ---------------------------------------------------------------- modal
function modal({ title, body, ok, onOk, danger, wide, focus, noCancel }) {
  const dlg = $('#modal');
  $('#modal-title').textContent = title;
  $('#modal-body').replaceChildren(...body);
  $('#modal-error').textContent = '';
  const okBtn = $('#modal-ok');
  okBtn.textContent = ok;
  okBtn.classList.toggle('danger', !!danger);
  okBtn.disabled = false;
  $('#modal-cancel').hidden = !!noCancel;
  dlg.classList.toggle('wide', !!wide);
  const form = $('#modal-form');
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (!onOk) { dlg.close(); return; }
    okBtn.disabled = true;
    $('#modal-error').textContent = '';
    try {
      await onOk();
      dlg.close();
    } catch (e) {
      $('#modal-error').textContent = e.message;
    } finally {
      okBtn.disabled = false;
    }
  };
  $('#modal-cancel').onclick = () => dlg.close();
  if (!dlg.open) dlg.showModal();
  if (focus) focus.focus();
}

// ---------------------------------------------------------------- start
(async function start() {
  applyLang();
  try {
    state.me = await api('GET', '/api/me');
    await showApp();
  } catch (e) {
    showLogin();
  }
})();
