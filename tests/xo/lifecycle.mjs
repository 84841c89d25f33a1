// lifecycle.mjs: Xen Orchestra's connector (npm xen-api) drives a real VM
// (the test guest, booted by xapid's qemu driver) through its lifecycle as
// XO does: VM.create, then Async calls watched through their tasks, and the
// VM's state read from the connector's object cache, which only the
// connector's event.from loop updates. Prints one JSON line of findings; the
// pytest driver (tests/client/test_xen_orchestra_lifecycle.py) asserts on them.
//   node lifecycle.mjs URL PASSWORD TRANSPORT KERNEL INITRD STATE_DIR
import { createClient } from 'xen-api'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const [url, password, transport, kernel, initrd, stateDir] = process.argv.slice(2)
const MiB = 1024 * 1024
const READY = 'XAPID-GUEST-READY'

const findings = { transport, steps: {}, domids: {}, states: {}, allowedOperations: {}, currentOperations: {} }
const withTimeout = (promise, ms, what) => {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const main = async () => {
  const xapi = createClient({ url, auth: { user: 'root', password }, allowUnauthorized: true, transport })
  await withTimeout(xapi.connect(), 10000, 'connect')
  await withTimeout(xapi.objectsFetched, 10000, 'objectsFetched')

  // Resolves with the cached VM record (or true once it is gone) as soon as
  // `predicate` holds for the connector's cache; re-checked on each change
  // the event loop applies to it.
  let vmRef
  const cached = () => xapi.getObjectByRef(vmRef, undefined)
  const waitCache = (predicate, what, ms = 30000) => {
    const check = () => predicate(cached())
    if (check()) return Promise.resolve(cached() ?? true)
    let listener
    const seen = new Promise(resolve => {
      listener = () => {
        if (check()) resolve(cached() ?? true)
      }
      for (const event of ['add', 'update', 'remove']) xapi.objects.on(event, listener)
    })
    return withTimeout(seen, ms, `cache: ${what}`).finally(() => {
      for (const event of ['add', 'update', 'remove']) xapi.objects.removeListener(event, listener)
    })
  }
  const powerState = state => vm => vm !== undefined && vm.power_state === state

  const consoleLog = uuid => join(stateDir, 'domains', uuid, 'console.log')
  const readyCount = uuid => {
    const path = consoleLog(uuid)
    return existsSync(path) ? readFileSync(path, 'latin1').split(READY).length - 1 : 0
  }
  const waitReady = async (uuid, count, ms = 120000) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (readyCount(uuid) >= count) return
      await sleep(50)
    }
    throw new Error(`guest did not print ${READY} ${count} time(s) within ${ms} ms`)
  }

  // One step: the Async call (its task watched by the connector), then the
  // cache reaching `predicate`. Records the call's and the cache's delays.
  const step = async (name, method, args, predicate, what) => {
    const started = Date.now()
    const result = await withTimeout(xapi.callAsync(method, ...args), 150000, method)
    const replied = Date.now()
    const vm = await waitCache(predicate, `${name}: ${what}`)
    findings.steps[name] = { callMs: replied - started, cacheMs: Date.now() - started, result }
    if (vm !== true) snapshot(name, vm)
    return vm
  }
  const snapshot = (name, vm) => {
    findings.states[name] = vm.power_state
    findings.domids[name] = Number(vm.domid)
    findings.allowedOperations[name] = [...vm.allowed_operations].sort()
    findings.currentOperations[name] = Object.values(vm.current_operations)
  }

  // VM.create with a full record, as XO's VM creation sends one (integers
  // as numbers: JSON numbers over JSON-RPC, strings over XML-RPC).
  let started = Date.now()
  vmRef = await xapi.call('VM.create', {
    name_label: `xo-lifecycle-${transport}`,
    name_description: 'created by tests/xo/lifecycle.mjs',
    user_version: 1,
    is_a_template: false,
    affinity: 'OpaqueRef:NULL',
    memory_static_max: 192 * MiB,
    memory_dynamic_max: 192 * MiB,
    memory_dynamic_min: 192 * MiB,
    memory_static_min: 64 * MiB,
    VCPUs_max: 1,
    VCPUs_at_startup: 1,
    VCPUs_params: {},
    actions_after_shutdown: 'destroy',
    actions_after_reboot: 'restart',
    actions_after_crash: 'destroy',
    PV_bootloader: '',
    PV_kernel: kernel,
    PV_ramdisk: initrd,
    PV_args: 'console=ttyS0 quiet panic=-1',
    PV_bootloader_args: '',
    PV_legacy_args: '',
    HVM_boot_policy: '',
    HVM_boot_params: {},
    platform: {},
    PCI_bus: '',
    other_config: { clean_shutdown_timeout: '60' },
    recommendations: '',
    tags: [],
  })
  findings.vmRefIsRef = typeof vmRef === 'string' && vmRef.startsWith('OpaqueRef:')

  // Every (power_state, domid) the cache holds for the VM, in order, as the
  // event loop delivers them; 'gone' once it leaves the cache.
  findings.history = []
  const record = () => {
    const vm = cached()
    const entry = vm === undefined ? 'gone' : `${vm.power_state}/${vm.domid}`
    if (findings.history.length === 0 && entry === 'gone') return
    if (findings.history.at(-1) !== entry) findings.history.push(entry)
  }
  for (const event of ['add', 'update', 'remove']) xapi.objects.on(event, record)
  record()
  let vm = await waitCache(powerState('Halted'), 'the new VM appears Halted', 10000)
  findings.steps.create = { callMs: Date.now() - started }
  snapshot('create', vm)
  const uuid = vm.uuid
  findings.uuidMatches = uuid === (await xapi.call('VM.get_uuid', vmRef))
  findings.cachedMemoryStaticMax = Number(vm.memory_static_max)
  findings.cachedPVArgs = vm.PV_args

  // Start (start_paused=false, force=false), the guest boots.
  started = Date.now()
  vm = await step('start', 'VM.start', [vmRef, false, false], powerState('Running'), 'Running')
  await waitReady(uuid, 1)
  findings.steps.start.readyMs = Date.now() - started
  findings.residentOnHost = xapi.getObject(vm.resident_on, undefined)?.$type === 'host'

  await step('pause', 'VM.pause', [vmRef], powerState('Paused'), 'Paused')
  await step('unpause', 'VM.unpause', [vmRef], powerState('Running'), 'Running')

  // The guest powers off on the ACPI button and boots again: a new domid.
  const domid = Number(cached().domid)
  started = Date.now()
  await step(
    'clean_reboot',
    'VM.clean_reboot',
    [vmRef],
    vm => vm !== undefined && vm.power_state === 'Running' && Number(vm.domid) !== domid,
    'Running with a new domid'
  )
  await waitReady(uuid, 2)
  findings.steps.clean_reboot.readyMs = Date.now() - started
  // Once the guest is up again, the cache (brought up to date by barrier())
  // still holds the domain the reboot made.
  await withTimeout(xapi.barrier(), 5000, 'barrier')
  findings.domids.clean_reboot_ready = Number(cached().domid)
  findings.readyLinesAfterReboot = readyCount(uuid)

  await step('clean_shutdown', 'VM.clean_shutdown', [vmRef], powerState('Halted'), 'Halted')
  findings.residentOnAfterShutdown = cached().resident_on

  await step('start_again', 'VM.start', [vmRef, false, false], powerState('Running'), 'Running')
  await step('hard_shutdown', 'VM.hard_shutdown', [vmRef], powerState('Halted'), 'Halted')

  // A call the VM's state forbids, synchronously and through a task.
  const failure = async promise => {
    try {
      await promise
      return { resolved: true }
    } catch (error) {
      return { code: error.code, params: error.params, name: error.constructor.name, message: error.message }
    }
  }
  findings.pauseHalted = await failure(xapi.call('VM.pause', vmRef))
  findings.pauseHaltedAsync = await failure(withTimeout(xapi.callAsync('VM.pause', vmRef), 10000, 'Async.VM.pause'))
  findings.stateAfterBadCall = cached().power_state

  await step('destroy', 'VM.destroy', [vmRef], vm => vm === undefined, 'the VM is gone')
  findings.getRecordAfterDestroy = await failure(xapi.call('VM.get_record', vmRef))

  findings.eventLoopError = xapi.watchEventsError === undefined ? null : String(xapi.watchEventsError)
  await xapi.disconnect()
  findings.vmRef = vmRef
}

main().then(
  () => {
    console.log(JSON.stringify(findings))
    process.exit(0)
  },
  error => {
    findings.error = String(error && error.stack ? error.stack : error)
    if (error && error.code !== undefined) findings.errorCode = { code: error.code, params: error.params }
    console.log(JSON.stringify(findings))
    process.exit(1)
  }
)
