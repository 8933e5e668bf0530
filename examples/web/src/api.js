// The GraphQL client: urql with cookies (credentials: 'include'), and an auth
// exchange that turns an UNAUTHENTICATED answer into one shared silent
// refresh followed by one retry.
import { Client, fetchExchange, gql } from '@urql/core'
import { authExchange } from '@urql/exchange-auth'

export const API_URL = import.meta.env.VITE_API_URL ?? 'http://localhost:8000/graphql'

const USER_FIELDS = 'id name email photo role verified createdAt'

export const ME = gql`query Me { me { ${USER_FIELDS} } }`
export const SESSIONS = gql`query Sessions { sessions { id createdAt lastUsedAt userAgent ip current } }`
export const LOGIN = gql`mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessTokenExpiresAt user { ${USER_FIELDS} } }
}`
export const REGISTER = gql`mutation Register($input: RegisterInput!) { register(input: $input) { id email verified } }`
export const REFRESH = gql`mutation Refresh { refresh { accessTokenExpiresAt } }`
export const LOGOUT = gql`mutation Logout { logout }`
export const LOGOUT_ALL = gql`mutation LogoutAll { logoutAll }`
export const REQUEST_RESET = gql`mutation RequestPasswordReset($email: String!) { requestPasswordReset(email: $email) }`
export const RESET = gql`mutation ResetPassword($token: String!, $newPassword: String!) { resetPassword(token: $token, newPassword: $newPassword) }`
export const VERIFY = gql`mutation VerifyEmail($token: String!) { verifyEmail(token: $token) }`
export const CONFIRM_EMAIL = gql`mutation ConfirmEmailChange($token: String!) { confirmEmailChange(token: $token) }`

// Operations that must never trigger a refresh: a wrong password is not an
// expired token, and refresh cannot refresh itself.
const NO_REFRESH = new Set([
  'login', 'refresh', 'register',
  // The e-mail mutations that work signed out.
  'requestPasswordReset', 'resetPassword', 'sendVerificationEmail', 'verifyEmail', 'confirmEmailChange',
])

function rootFields(operation) {
  return operation.query.definitions
    .filter((d) => d.kind === 'OperationDefinition')
    .flatMap((d) => d.selectionSet.selections.map((s) => s.name?.value))
}

function isUnauthenticated(error) {
  return error?.graphQLErrors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED') ?? false
}

// loggedInCookie tells whether a silent refresh is worth trying: the API
// sets logged_in (readable by scripts) with the refresh token's lifetime.
export function loggedInCookie() {
  return document.cookie.split('; ').includes('logged_in=true')
}

export function createApi({ onSignedOut }) {
  const client = new Client({
    url: API_URL,
    requestPolicy: 'network-only',
    fetchOptions: { credentials: 'include' },
    exchanges: [
      authExchange(async (utils) => ({
        // The HttpOnly cookies carry the tokens; nothing to add.
        addAuthToOperation: (operation) => operation,
        willAuthError: () => false,
        didAuthError: (error, operation) =>
          isUnauthenticated(error) && !rootFields(operation).some((f) => NO_REFRESH.has(f)),
        // Called once for all the operations that failed together; they
        // wait for it and are retried once.
        refreshAuth: async () => {
          const result = await utils.mutate(REFRESH, {})
          if (result.error) onSignedOut()
        },
      })),
      fetchExchange,
    ],
  })
  return {
    query: (doc, vars = {}) => client.query(doc, vars).toPromise(),
    mutate: (doc, vars = {}) => client.mutation(doc, vars).toPromise(),
  }
}

export function errorMessage(error) {
  const first = error?.graphQLErrors?.[0]
  if (first) return first.message
  return error?.networkError ? 'The server cannot be reached.' : String(error?.message ?? error)
}

export { isUnauthenticated }
