// The e-mail link pages: read the token from the fragment (or the query),
// never send it anywhere but the mutation, and call the mutation only when
// the user presses the button (a mail scanner that opens the link changes
// nothing).
(function () {
  "use strict";
  var form = document.getElementById("form");
  var status = document.getElementById("status");
  var button = document.getElementById("submit");
  var mutation = form.getAttribute("data-mutation");

  function readToken() {
    var hash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    var query = new URLSearchParams(window.location.search);
    return hash.get("token") || query.get("token") || "";
  }
  var token = readToken();
  // Keep the token out of the history and of anything this page might load.
  if (token && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }

  function show(text, kind) {
    status.textContent = text;
    status.className = "status " + (kind || "");
  }

  if (!token) {
    show("This link has no token. Open the link from the e-mail again, or ask for a new one.", "error");
    button.disabled = true;
    return;
  }

  var queries = {
    verifyEmail: "mutation($token: String!) { verifyEmail(token: $token) }",
    confirmEmailChange: "mutation($token: String!) { confirmEmailChange(token: $token) }",
    resetPassword: "mutation($token: String!, $newPassword: String!) { resetPassword(token: $token, newPassword: $newPassword) }"
  };
  var done = {
    verifyEmail: "Your e-mail address is verified. You can sign in now.",
    confirmEmailChange: "Your e-mail address has been changed.",
    resetPassword: "Your password has been reset, and every device signed out. Sign in with the new password."
  };

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var variables = { token: token };
    if (mutation === "resetPassword") {
      var password = document.getElementById("password").value;
      var confirm = document.getElementById("confirm").value;
      if (password !== confirm) {
        show("The passwords do not match.", "error");
        return;
      }
      variables.newPassword = password;
    }
    button.disabled = true;
    show("Working…");
    fetch("/graphql", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ query: queries[mutation], variables: variables })
    }).then(function (response) {
      return response.json();
    }).then(function (body) {
      if (body.errors && body.errors.length) {
        var e = body.errors[0];
        var code = e.extensions && e.extensions.code;
        show(e.message || "Something went wrong.", "error");
        // A refused password, a busy server or a taken address leave the
        // link usable: let the user try again.
        var field = e.extensions && e.extensions.field;
        if (code !== "BAD_USER_INPUT" || field !== "token") {
          button.disabled = false;
        }
        return;
      }
      show(done[mutation], "ok");
      form.querySelectorAll("input").forEach(function (i) { i.disabled = true; });
    }).catch(function () {
      show("The server could not be reached; try again.", "error");
      button.disabled = false;
    });
  });
})();
