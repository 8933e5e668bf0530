// The GraphQL playground at / in a real browser: the page itself (GraphiQL
// and React from the CDN, answered from npm), running `me` with the cookie.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launchBrowser, startAPI } from './harness.mjs'
import { routeCDN } from './cdn.mjs'

let api
let browser

before(async () => {
  api = await startAPI()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await api?.stop()
})

async function gql(request, query, variables) {
  const res = await request.post(`${api.url}/graphql`, { data: { query, variables } })
  const body = await res.json()
  assert.equal(body.errors, undefined, JSON.stringify(body.errors))
  return body.data
}

test('the playground renders and runs me with the cookie', async () => {
  const context = await browser.newContext()
  const served = await routeCDN(context)
  // Sign in through the same browser context, so the cookie jar holds the session.
  await gql(context.request, 'mutation($input: RegisterInput!) { register(input: $input) { id } }', {
    input: { name: 'Play', email: 'play@example.com', password: 'password1234', passwordConfirm: 'password1234' },
  })
  await gql(context.request, 'mutation { login(input: {email: "play@example.com", password: "password1234"}) { accessToken } }')

  const page = await context.newPage()
  await page.addInitScript(() => localStorage.setItem('graphiql:query', '{ me { email name } }'))
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.goto(`${api.url}/`)
  const run = page.locator('.graphiql-execute-button')
  await run.waitFor({ timeout: 30_000 })
  assert.ok(served.some((f) => f.startsWith('graphiql@')), `served: ${served}`)
  assert.ok(served.some((f) => f.startsWith('react@')), `served: ${served}`)

  await run.click()
  await page.locator('.result-window').getByText('play@example.com').waitFor({ timeout: 15_000 })
  assert.deepEqual(errors, [])
  await context.close()
})
