// The JavaScript half of tinygrad's WEBGPU device in Pyodide (py_browser/webgpu/).
// Python holds integer handles; every call here is one FFI crossing with plain numbers,
// so a kernel launch, or a whole batch of them, costs one crossing.

// The limits tinygrad's kernels can use; everything else keeps WebGPU's defaults.
const WANTED_LIMITS = [
  "maxBufferSize", "maxStorageBufferBindingSize", "maxStorageBuffersPerShaderStage",
  "maxUniformBuffersPerShaderStage", "maxBindingsPerBindGroup", "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension",
];

let device = null;
let summary = null;           // what init() learnt about the adapter
let infinity = null;          // binding 0 of every tinygrad WGSL kernel
let pendingError;            // first asynchronous WebGPU error, raised in Python at the next sync/read
let staging = null;           // one reusable MAP_READ buffer for readbacks
const buffers = new Map();
const pipelines = new Map();
const batches = new Map();
const uniforms = new Map();   // int value -> immutable 4-byte uniform buffer
let nextHandle = 1;
let submits = 0;

function describe(adapter) {
  const info = adapter.info || {};
  const parts = [info.vendor, info.architecture, info.device].filter(Boolean);
  return info.description || parts.join(" ") || "unknown WebGPU adapter";
}

export async function init() {
  if (device) return summary;
  if (!navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("WebGPU is present but no adapter is available (blocked or no GPU)");
  const requiredLimits = {};
  for (const name of WANTED_LIMITS) if (adapter.limits[name] !== undefined) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = ["shader-f16"].filter((f) => adapter.features.has(f));
  device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.addEventListener("uncapturederror", (e) => { pendingError ??= e.error.message; });
  device.lost.then((info) => { pendingError ??= `WebGPU device lost: ${info.message || info.reason}`; });
  infinity = device.createBuffer({ size: 4, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(infinity, 0, new Float32Array([Infinity]));
  summary = { description: describe(adapter), limits: requiredLimits, features: requiredFeatures };
  return summary;
}

// Errors WebGPU reports asynchronously; Python raises them at the next synchronisation point.
// Returns undefined (None in Python) when there is none.
export function takeError() {
  const e = pendingError;
  pendingError = undefined;
  return e;
}

export function alloc(nbytes) {
  // Storage bindings must be non-empty and 4-byte aligned.
  const size = Math.max(4, Math.ceil(nbytes / 4) * 4);
  const handle = nextHandle++;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  buffers.set(handle, device.createBuffer({ size, usage }));
  return handle;
}

export function free(handle) {
  buffers.get(handle)?.destroy();
  buffers.delete(handle);
}

// `data` is a PyProxy of a Python buffer: write straight from wasm memory, no intermediate copy.
export function write(handle, data, offset = 0) {
  const view = data.getBuffer("u8");
  try {
    device.queue.writeBuffer(buffers.get(handle), offset, view.data, 0, view.data.byteLength);
  } finally {
    view.release();
  }
}

export function copy(dst, src, nbytes) {
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffers.get(src), 0, buffers.get(dst), 0, Math.ceil(nbytes / 4) * 4);
  submit(encoder);
}

export async function read(handle, nbytes) {
  const size = Math.ceil(nbytes / 4) * 4;
  if (!staging || staging.size < size) {
    staging?.destroy();
    staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffers.get(handle), 0, staging, 0, size);
  submit(encoder);
  await staging.mapAsync(GPUMapMode.READ, 0, size);
  const out = new Uint8Array(staging.getMappedRange(0, size).slice(0, nbytes));
  staging.unmap();
  return out;
}

function submit(encoder) {
  device.queue.submit([encoder.finish()]);
  submits++;
}

// Live object counts, for diagnostics and tests (are buffers freed? one submit per replayed batch?).
export function stats() {
  return { buffers: buffers.size, pipelines: pipelines.size, batches: batches.size, submits };
}

export async function sync() {
  await device.queue.onSubmittedWorkDone();
}

// tinygrad's WGSL: binding 0 is the INFINITY uniform, then one storage buffer per kernel buffer, then one
// i32 uniform per symbolic variable. The layout is explicit: "auto" would drop an unused binding 0.
export async function compile(name, code, nStorage, nUniform) {
  // An error scope keeps this kernel's errors out of `pendingError`: they are thrown here, with its name.
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label: name });
  const info = await module.getCompilationInfo();
  const entry = (binding, type) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
  const entries = [entry(0, "uniform")];
  for (let i = 0; i < nStorage; i++) entries.push(entry(1 + i, "storage"));
  for (let i = 0; i < nUniform; i++) entries.push(entry(1 + nStorage + i, "uniform"));
  const layout = device.createBindGroupLayout({ entries, label: name });
  const errors = info.messages.filter((m) => m.type === "error");
  let pipeline = null, failure = null;
  if (errors.length) {
    const lines = errors.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join("\n");
    failure = `WGSL compilation of kernel ${name} failed:\n${lines}`;
  } else {
    pipeline = await device.createComputePipelineAsync({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: name },
      label: name,
    }).catch((e) => { failure = `WebGPU pipeline for kernel ${name} failed: ${e.message}`; });
  }
  const scoped = await device.popErrorScope();
  if (!failure && scoped) failure = `WebGPU rejected kernel ${name}: ${scoped.message}`;
  if (failure) throw new Error(failure);
  const handle = nextHandle++;
  pipelines.set(handle, { pipeline, layout, nStorage, nUniform, name });
  return handle;
}

export function releasePipeline(handle) {
  pipelines.delete(handle);
}

function uniform(value) {
  let buf = uniforms.get(value);
  if (!buf) {
    buf = device.createBuffer({ size: 4, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, new Int32Array([value]));
    uniforms.set(value, buf);
  }
  return buf;
}

function bindGroup(p, args) {
  const entries = [{ binding: 0, resource: { buffer: infinity } }];
  for (let i = 0; i < p.nStorage; i++) entries.push({ binding: 1 + i, resource: { buffer: buffers.get(args[i]) } });
  for (let i = 0; i < p.nUniform; i++) {
    entries.push({ binding: 1 + p.nStorage + i, resource: { buffer: uniform(args[p.nStorage + i]) } });
  }
  return device.createBindGroup({ layout: p.layout, entries });
}

// One kernel, one command buffer, one submit: what tinygrad does outside a TinyJit graph.
export function dispatch(handle, gx, gy, gz, ...args) {
  const p = pipelines.get(handle);
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(p.pipeline);
  pass.setBindGroup(0, bindGroup(p, args));
  pass.dispatchWorkgroups(gx, gy, gz);
  pass.end();
  submit(encoder);
}

// A captured TinyJit: `kernels` is [[pipeline, gx, gy, gz, ...buffer handles, ...values], ...].
export function createBatch(kernels) {
  const entries = kernels.map(([pipe, gx, gy, gz, ...args]) => {
    const p = pipelines.get(pipe);
    return { p, dims: [gx, gy, gz], args, group: bindGroup(p, args) };
  });
  const handle = nextHandle++;
  batches.set(handle, entries);
  return handle;
}

export function releaseBatch(handle) {
  batches.delete(handle);
}

// Replays a batch in one compute pass and one submit. `updates` is a flat list of
// [kernel, slot, value] triples (slot < nStorage+nUniform: a new buffer or variable value; slot 100-102: a
// launch dimension), applied before encoding; only kernels whose arguments changed get a new bind group.
export function runBatch(handle, ...updates) {
  const entries = batches.get(handle);
  const dirty = new Set();
  for (let i = 0; i < updates.length; i += 3) {
    const e = entries[updates[i]], slot = updates[i + 1], value = updates[i + 2];
    if (slot >= 100) { e.dims[slot - 100] = value; continue; }
    if (e.args[slot] !== value) { e.args[slot] = value; dirty.add(e); }
  }
  for (const e of dirty) e.group = bindGroup(e.p, e.args);
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const e of entries) {
    pass.setPipeline(e.p.pipeline);
    pass.setBindGroup(0, e.group);
    pass.dispatchWorkgroups(e.dims[0], e.dims[1], e.dims[2]);
  }
  pass.end();
  submit(encoder);
}
