// xva.mjs: Xen Orchestra's connector (npm xen-api) moves a VM out and back
// in as XO's backups and VM import do: getResource('/export/') with a task,
// its body piped as a stream of unknown length into
// putResource(..., '/import/') (Content-Length 2^50, then the connection
// closed), the new VM's ref taken from the import task's result as
// xo-server's _importVm does. Prints one JSON line of findings; the pytest
// driver (tests/client/test_xva_xen_orchestra.py) asserts on them.
//   node xva.mjs URL PASSWORD VM_REF SR_REF COMPRESSION
import { createClient } from 'xen-api'
import { PassThrough } from 'node:stream'

const [url, password, vmRef, srRef, compression] = process.argv.slice(2)
const findings = {}

const main = async () => {
  const xapi = createClient({ url, auth: { user: 'root', password }, allowUnauthorized: true })
  await xapi.connect()
  await xapi.objectsFetched
  const exported = await xapi.getResource('/export/', {
    query: { ref: vmRef, use_compression: compression },
    task: true,
  })
  findings.exportStatus = exported.statusCode
  // A stream without a length, as XO hands an export to an import.
  const stream = new PassThrough()
  let bytes = 0
  exported.body.on('data', chunk => { bytes += chunk.length })
  exported.body.pipe(stream)
  // putResource resolves with the import task's result
  const result = await xapi.putResource(stream, '/import/', { query: { sr_id: srRef }, task: true })
  await exported.task
  findings.exportBytes = bytes
  findings.importResult = result
  // xo-server's extractOpaqueRef: the first OpaqueRef in the result
  const match = /OpaqueRef:[0-9a-z-]+/.exec(Array.isArray(result) ? result.join(' ') : String(result))
  findings.vm = match && match[0]
  await xapi.disconnect()
}

main().then(
  () => console.log(JSON.stringify(findings)),
  async error => {
    if (error && error.response && error.response.body) findings.body = await error.response.body.text()
    findings.error = String(error && (error.code ? `${error.code} ${JSON.stringify(error.params)}` : error.stack || error))
    console.log(JSON.stringify(findings))
    process.exitCode = 1
  }
)
