// Starts Swagger UI on this server's /openapi.json (server/apidocs). A file, not an inline script,
// so the page's Content-Security-Policy can forbid inline scripts. validatorUrl null: Swagger UI
// would otherwise send the schema's address to validator.swagger.io, a host outside the school.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
