// connector.mjs: drives xapid with Xen Orchestra's own connector (npm
// xen-api) over one transport and prints one JSON line of findings; the
// pytest driver (tests/client/test_xen_orchestra.py) asserts on them.
//   node connector.mjs URL PASSWORD TRANSPORT
import { createClient } from 'xen-api'

const [url, password, transport] = process.argv.slice(2)
const findings = { transport }
const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))])

const main = async () => {
  const xapi = createClient({ url, auth: { user: 'root', password }, allowUnauthorized: true, transport })
  const other = createClient({ url, auth: { user: 'root', password }, allowUnauthorized: true, transport, watchEvents: false })
  await withTimeout(xapi.connect(), 10000, 'connect')
  await withTimeout(xapi.objectsFetched, 10000, 'objectsFetched')
  const all = Object.values(xapi.objects.all)
  findings.objects = all.length
  findings.types = [...new Set(all.map(o => o.$type))].sort()
  const pool = all.find(o => o.$type === 'pool')
  findings.poolMasterIsHost = xapi.getObject(pool.master).$type === 'host'
  const vm = all.find(o => o.$type === 'VM' && o.is_control_domain)

  // A change made by another client reaches this one's objects.
  await other.connect()
  const label = `changed-by-other-${Date.now()}`
  const started = Date.now()
  const seen = new Promise(resolve => {
    xapi.objects.on('update', objects => {
      for (const o of Object.values(objects)) {
        if (o.$ref === vm.$ref && o.name_label === label) resolve(Date.now() - started)
      }
    })
  })
  await other.call('VM.set_name_label', vm.$ref, label)
  findings.otherChangeSeenMs = await withTimeout(seen, 5000, 'event for the other client change')

  // barrier() writes pool.other_config xo:barrier:* and waits for its event.
  await withTimeout(xapi.barrier(), 5000, 'barrier')
  findings.barrier = true

  // callAsync resolves with the task's result.
  const network = await withTimeout(
    xapi.callAsync('network.create', { name_label: `xo-${transport}`, MTU: 1500, other_config: {} }),
    10000,
    'callAsync'
  )
  findings.asyncResultIsRef = typeof network === 'string' && network.startsWith('OpaqueRef:')
  findings.asyncNetworkLabel = await xapi.call('network.get_name_label', network)
  try {
    await xapi.callAsync('network.destroy', 'OpaqueRef:does-not-exist')
    findings.asyncFailure = null
  } catch (error) {
    findings.asyncFailure = error.code
  }

  await other.disconnect()
  await xapi.disconnect()
  findings.disconnected = xapi.status
}

main().then(
  () => {
    console.log(JSON.stringify(findings))
    process.exit(0)
  },
  error => {
    findings.error = String(error && error.stack ? error.stack : error)
    console.log(JSON.stringify(findings))
    process.exit(1)
  }
)
