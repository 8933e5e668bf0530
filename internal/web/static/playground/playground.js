// The playground: GraphiQL (vendored, see scripts/vendor-playground.sh)
// against this server's /graphql. The fetcher sends the cookies (same
// origin), so after `login` the `me` query works.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint");
  var fetcher = GraphiQL.createFetcher({ url: location.protocol + "//" + location.host + endpoint });
  ReactDOM.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true
    }),
    root
  );
})();
