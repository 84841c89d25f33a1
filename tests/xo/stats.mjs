// stats.mjs: what Xen Orchestra reads of a host's metrics and messages,
// with its own connector (npm xen-api): /rrd_updates fetched through
// getResource and parsed as xo-server's xapi-stats.mjs parses it, and
// message objects arriving in (and leaving) the connector's object cache
// through its event.from loop. Prints one JSON line of findings for
// tests/client/test_metrics.py.
//   node stats.mjs URL PASSWORD
import { createClient } from 'xen-api'

const [url, password] = process.argv.slice(2)
const findings = {}
const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))])

const main = async () => {
  const xapi = createClient({ url, auth: { user: 'root', password }, allowUnauthorized: true })
  await withTimeout(xapi.connect(), 10000, 'connect')
  await withTimeout(xapi.objectsFetched, 10000, 'objectsFetched')
  const host = Object.values(xapi.objects.all).find(o => o.$type === 'host')

  // Messages: an add and a remove seen through the object cache.
  const added = new Promise(resolve => {
    xapi.objects.on('add', objects => {
      for (const o of Object.values(objects)) if (o.$type === 'message' && o.name === 'XO_SEES_ME') resolve(o)
    })
  })
  const ref = await xapi.call('message.create', 'XO_SEES_ME', 3, 'Host', host.uuid, 'hello XO')
  const message = await withTimeout(added, 5000, 'message add event')
  findings.message = { name: message.name, body: message.body, priority: message.priority, obj_uuid: message.obj_uuid === host.uuid }
  const removed = new Promise(resolve => {
    xapi.objects.on('remove', objects => {
      for (const id of Object.keys(objects)) if (id === message.$id || id === ref) resolve(true)
    })
  })
  await xapi.call('message.destroy', ref)
  findings.messageRemoved = await withTimeout(removed, 5000, 'message remove event')

  // Stats as xapi-stats.mjs asks for them: the 5 s step, 120 points.
  const step = 5
  const serverTime = await xapi.call('host.get_servertime', host.$ref)
  const now = Math.floor(Date.parse(serverTime.replace(/^(\d{4})(\d{2})(\d{2})T/, '$1-$2-$3T')) / 1000)
  // xo-server passes { host }, which makes the connector use the host's
  // address on the default port; the test daemon listens on a port of its
  // own, so the connection's URL (the same host) is used instead.
  const response = await xapi.getResource('/rrd_updates', {
    query: { cf: 'AVERAGE', host: 'true', interval: step, json: 'true', start: now - step * 120 + step },
  })
  const json = JSON.parse(await response.body.text())
  // The connector made a task for the request (as for xo-server's) and
  // waits for it to end.
  findings.taskEnded = response.task !== undefined && (await withTimeout(response.task, 5000, 'the task of getResource')) !== null
  findings.stepMatches = json.meta.step == step // eslint-disable-line eqeqeq
  const re = /^AVERAGE:([^:]+):(.+):(.+)$/
  const stats = {}
  json.meta.legend.forEach((entry, i) => {
    const [, type, uuid, metric] = re.exec(entry)
    stats[`${type}:${uuid === host.uuid ? 'thisHost' : uuid}:${metric}`] = json.data
      .slice()
      .reverse()
      .map(row => (row.values[i] === 'NaN' ? null : +row.values[i]))
  })
  findings.series = Object.keys(stats).length
  const known = key => (stats[key] || []).filter(v => v !== null)
  findings.hostCpu0 = known('host:thisHost:cpu0')
  findings.hostMemoryTotalKib = known('host:thisHost:memory_total_kib')
  findings.vmSeries = Object.keys(stats).filter(k => k.startsWith('vm:'))
  await xapi.disconnect()
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
