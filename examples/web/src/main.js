import {
  CONFIRM_EMAIL, createApi, errorMessage, loggedInCookie, LOGIN, LOGOUT, LOGOUT_ALL, ME, REGISTER,
  REQUEST_RESET, RESET, SESSIONS, VERIFY,
} from './api.js'

const $ = (id) => document.getElementById(id)

function show(state, message = '') {
  $('signed-in').hidden = state !== 'signed-in'
  $('signed-out').hidden = state !== 'signed-out'
  $('link-page').hidden = state !== 'link-page'
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
  $('user-verified').textContent = user.verified ? 'yes' : 'no'
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
  show('signed-out', result.data.register.verified
    ? 'Registered. You can log in now.'
    : 'Registered. Open the link we sent to your e-mail address, then log in.')
})

$('forgot-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const result = await api.mutate(REQUEST_RESET, { email: new FormData(event.target).get('email') })
  if (result.error) return fail(result.error)
  fail(null)
  event.target.reset()
  // The answer is the same for every address: it reveals nothing.
  show('signed-out', 'If that address is registered, a link to reset the password is on its way.')
})

// The pages the e-mails' links open. The token is in the fragment (never
// sent to any server but in the mutation); opening the page spends
// nothing: the mutation runs when the button is pressed.
const LINK_PAGES = {
  '/verify-email': { title: 'Verify your e-mail address', button: 'Verify my address', mutation: VERIFY, done: 'Your e-mail address is verified. You can log in now.' },
  '/reset-password': { title: 'Choose a new password', button: 'Reset my password', mutation: RESET, password: true, done: 'Your password has been reset and every device signed out. Log in with the new password.' },
  '/confirm-email': { title: 'Confirm your new e-mail address', button: 'Confirm the change', mutation: CONFIRM_EMAIL, done: 'Your e-mail address has been changed.' },
}

function linkPage(page) {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token') || new URLSearchParams(location.search).get('token') || ''
  history.replaceState(null, '', location.pathname) // the token leaves the address bar
  $('link-title').textContent = page.title
  $('link-submit').textContent = page.button
  $('link-password').hidden = !page.password
  show('link-page', token ? '' : 'This link has no token: open it from the e-mail again.')
  $('link-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const vars = { token }
    if (page.password) {
      const form = new FormData(event.target)
      if (form.get('password') !== form.get('passwordConfirm')) return fail({ message: 'The passwords do not match.' })
      vars.newPassword = form.get('password')
    }
    const result = await api.mutate(page.mutation, vars)
    if (result.error) return fail(result.error)
    fail(null)
    $('link-form').hidden = true
    $('status').textContent = page.done
  })
}

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
if (LINK_PAGES[location.pathname]) {
  linkPage(LINK_PAGES[location.pathname])
} else if (loggedInCookie()) {
  loadProfile()
} else {
  show('signed-out', 'You are signed out.')
}
