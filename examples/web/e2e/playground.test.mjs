// The GraphQL playground at / in a real browser, with every request to
// another host blocked (and recorded): GraphiQL and React come from the
// server itself, under its same-origin Content-Security-Policy, and `me`
// runs with the cookie.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { launchBrowser, startAPI } from './harness.mjs'

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

test('the playground renders and runs me with the cookie, loading nothing from another host', async () => {
  const context = await browser.newContext()
  const elsewhere = []
  await context.route((url) => url.hostname !== 'localhost' && url.hostname !== '127.0.0.1', (route) => {
    elsewhere.push(route.request().url())
    return route.abort()
  })
  // Sign in through the same browser context, so the cookie jar holds the session.
  await gql(context.request, 'mutation($input: RegisterInput!) { register(input: $input) { id } }', {
    input: { name: 'Play', email: 'play@example.com', password: 'password1234', passwordConfirm: 'password1234' },
  })
  await gql(context.request, 'mutation { login(input: {email: "play@example.com", password: "password1234"}) { accessToken } }')

  const page = await context.newPage()
  await page.addInitScript(() => localStorage.setItem('graphiql:query', '{ me { email name } }'))
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) errors.push(m.text().slice(0, 300))
  })
  const response = await page.goto(`${api.url}/`)
  const csp = response.headers()['content-security-policy'] ?? ''
  assert.match(csp, /script-src 'self'/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/)
  const run = page.locator('.graphiql-execute-button')
  await run.waitFor({ timeout: 30_000 })
  await run.click()
  await page.locator('.result-window').getByText('play@example.com').waitFor({ timeout: 15_000 })
  assert.deepEqual(errors, [])
  assert.deepEqual(elsewhere, [])
  await context.close()
})
