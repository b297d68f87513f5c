/* The web pages. Placeholder until they land: no routes. */
#include "server/app.h"

void gg__app_register_pages(gg_app *app) {
  (void)app;
}

void gg__app_pages_stop(gg_app *app) {
  (void)app;
}
