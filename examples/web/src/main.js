import { createApi, errorMessage, loggedInCookie, LOGIN, LOGOUT, LOGOUT_ALL, ME, REGISTER, SESSIONS } from './api.js'

const $ = (id) => document.getElementById(id)

function show(state, message = '') {
  $('signed-in').hidden = state !== 'signed-in'
  $('signed-out').hidden = state !== 'signed-out'
  $('status').textContent = message
  document.body.dataset.state = state
}

function fail(error) {
  $('error').textContent = error ? errorMessage(error) : ''
}

const api = createApi({ onSignedOut: () => show('signed-out', 'Your session has ended. Please log in.') })

async function loadProfile() {
  $('status').textContent = 'Loading…'
  const [me, sessions] = await Promise.all([api.query(ME), api.query(SESSIONS)])
  if (me.error) {
    show('signed-out', 'You are signed out.')
    return
  }
  const user = me.data.me
  $('user-name').textContent = user.name
  $('user-email').textContent = user.email
  $('user-role').textContent = user.role
  $('user-created').textContent = new Date(user.createdAt).toLocaleDateString()
  const list = $('sessions')
  list.replaceChildren(
    ...(sessions.data?.sessions ?? []).map((s) => {
      const li = document.createElement('li')
      li.textContent = `${s.userAgent.slice(0, 48) || 'unknown device'} · ${s.ip} · last used ${new Date(s.lastUsedAt).toLocaleTimeString()}`
      if (s.current) {
        li.className = 'current'
        li.textContent += ' (this device)'
      }
      return li
    }),
  )
  show('signed-in', `Welcome, ${user.name}.`)
  fail(null)
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  const result = await api.mutate(LOGIN, { email: form.get('email'), password: form.get('password') })
  if (result.error) return fail(result.error)
  event.target.reset()
  await loadProfile()
})

$('register-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = Object.fromEntries(new FormData(event.target))
  const result = await api.mutate(REGISTER, { input: form })
  if (result.error) return fail(result.error)
  fail(null)
  $('login-form').elements.email.value = form.email
  event.target.reset()
  show('signed-out', 'Registered. You can log in now.')
})

$('reload').addEventListener('click', () => loadProfile())

$('logout').addEventListener('click', async () => {
  const result = await api.mutate(LOGOUT)
  if (result.error) return fail(result.error)
  show('signed-out', 'You are signed out.')
})

$('logout-all').addEventListener('click', async () => {
  const result = await api.mutate(LOGOUT_ALL)
  if (result.error) return fail(result.error)
  show('signed-out', 'You are signed out on every device.')
})

// On load, the logged_in cookie says whether a (silent) refresh can work;
// without it there is no session to ask about.
if (loggedInCookie()) {
  loadProfile()
} else {
  show('signed-out', 'You are signed out.')
}
