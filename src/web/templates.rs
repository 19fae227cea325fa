//! [`Templates`] (feature `templates`): Jinja2 templates from a folder through minijinja,
//! Tornado's `template_path`, `render` and `render_string`, with HTML autoescape on by
//! default, per-request globals (`static_url()`, and whatever the application's context
//! providers add: the current user, `xsrf_form_html()`), and reloading when a file
//! changes in debug mode.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use minijinja::value::{merge_maps, Value};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::static_files::StaticFiles;
use super::xsrf;
use crate::http::{HttpError, IntoResponse, Request, Response};

/// Adds values to the context of every render for a request.
type Provider = Rc<dyn Fn(&Request) -> Value>;

/// The modification time of each file the loader read, by template name.
type Loaded = Arc<Mutex<HashMap<String, Option<SystemTime>>>>;

/// Templates under a folder (Tornado's `template_path`), rendered with minijinja's
/// Jinja2 syntax.
///
/// Autoescape is on by default, for every template as in Tornado: every value printed
/// is HTML-escaped unless it is marked safe (`|safe`, or [`Value::from_safe_string`]),
/// and in a `.js` or `.json` template printed as a JSON literal (safe inside a script;
/// in an HTML page's `<script>`, use `{{ value|tojson }}`). A template that is not HTML
/// (a mail's text) turns it off for itself with `{% autoescape false %}`; one included
/// from an HTML page is escaped as HTML, whatever its name. Templates are loaded on first use and kept; in
/// [`debug`](Templates::debug) mode a template whose file changed is loaded again.
/// A `Templates` is a cheap handle (clones share it); loop thread only.
///
/// Give it to the application ([`Application::templates`](crate::web::Application::templates))
/// and handlers render with [`Request::render`] (Tornado's `self.render`), or keep a
/// handle and call [`render`](Templates::render) with the request.
///
/// # Examples
///
/// ```no_run
/// use ioloop::http::Request;
/// use ioloop::web::{get, Application, StaticFiles, Templates};
/// use minijinja::context;
///
/// let files = StaticFiles::new("static");
/// let templates = Templates::new("templates")
///     .static_files(&files)
///     .context(|req| context! { path => req.path() });
/// let app = Application::new()
///     .templates(templates)
///     .route("/static/{*path}", get(files))
///     .route("/", get(|req: Request| async move {
///         req.render("index.html", context! { next => req.query_arg("next") })
///     }));
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct Templates {
    inner: Rc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Swapped whole (never borrowed while a template runs): a render clones the `Rc`.
    env: RefCell<Rc<Environment<'static>>>,
    debug: RefCell<bool>,
    loaded: Loaded,
    providers: RefCell<Vec<Provider>>,
}

/// What every template sees under the providers' values (from Tornado's template
/// namespace): `xsrf_form_html()`, the request's hidden `_xsrf` form field (marked safe;
/// empty when the application does not check XSRF), and `request_path`.
fn builtins(request: &Request) -> Value {
    let form = if xsrf::is_on(request) {
        request.xsrf_form_html()
    } else {
        String::new()
    };
    minijinja::context! {
        xsrf_form_html => Value::from_function(move || Value::from_safe_string(form.clone())),
        request_path => request.path(),
    }
}

/// The escaping of a template, by its name: JSON literals for scripts and JSON, HTML for
/// every other name (Tornado escapes every template; a plain-text one says
/// `{% autoescape false %}`).
fn escape_for(name: &str) -> AutoEscape {
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "js" | "mjs" | "json" => AutoEscape::Json,
        _ => AutoEscape::Html,
    }
}

/// The `Content-Type` of a rendered template, by its name.
fn content_type(name: &str) -> String {
    let guess = mime_guess::from_path(name).first_or_text_plain();
    let essence = guess.essence_str();
    if essence.starts_with("text/") || essence.ends_with("xml") || essence.ends_with("json") {
        format!("{essence}; charset=UTF-8")
    } else {
        essence.to_owned()
    }
}

/// The file of template `name` under `root`: plain path segments only (no `..`, no
/// root), so a template name from a request cannot read outside the folder.
fn template_file(root: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && !name.contains('\0');
    plain.then(|| root.join(relative))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Templates {
    /// Templates loaded from the folder `root` (Tornado's `template_path`), with HTML
    /// autoescape by name (see [`Templates`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// use ioloop::web::{minijinja::context, Templates};
    ///
    /// let root = std::env::temp_dir().join(format!("ioloop-doc-tpl-{}", std::process::id()));
    /// std::fs::create_dir_all(&root)?;
    /// std::fs::write(root.join("hello.html"), "<p>Hello, {{ name }}!</p>")?;
    /// let templates = Templates::new(&root);
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let page = templates.render_string(&req, "hello.html", context! { name => "<Ada>" })?;
    /// assert_eq!(page, "<p>Hello, &lt;Ada&gt;!</p>"); // escaped as HTML
    /// assert!(templates.render_string(&req, "../hello.html", ()).is_err()); // only under `root`
    /// std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Templates {
        let root = root.into();
        let loaded = Loaded::default();
        let mut env = Environment::new();
        env.set_auto_escape_callback(escape_for);
        let (folder, record) = (root.clone(), loaded.clone());
        env.set_loader(move |name| {
            let Some(path) = template_file(&folder, name) else {
                return Ok(None);
            };
            match std::fs::read_to_string(&path) {
                Ok(source) => {
                    if let Ok(mut loaded) = record.lock() {
                        loaded.insert(name.to_owned(), modified(&path));
                    }
                    Ok(Some(source))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("reading template {name:?} failed: {e}"),
                )),
            }
        });
        Templates {
            inner: Rc::new(Inner {
                root,
                env: RefCell::new(Rc::new(env)),
                debug: RefCell::new(false),
                loaded,
                providers: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Debug mode (Tornado's `debug=True` / `compiled_template_cache=False`): before
    /// each render, templates whose files changed since they were loaded are loaded
    /// again. Off by default (templates are read once).
    ///
    /// # Examples
    ///
    /// ```
    /// let templates = ioloop::web::Templates::new("templates").debug(cfg!(debug_assertions));
    /// # let _ = templates;
    /// ```
    pub fn debug(self, on: bool) -> Templates {
        *self.inner.debug.borrow_mut() = on;
        self
    }

    /// Makes `static_url(path)` available in every template: `files`'
    /// [`static_url`](StaticFiles::static_url), the path with its content version.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::{StaticFiles, Templates};
    /// let templates = Templates::new("templates").static_files(&StaticFiles::new("static"));
    /// # let _ = templates;
    /// ```
    pub fn static_files(self, files: &StaticFiles) -> Templates {
        let files = files.clone();
        self.configure(move |env| {
            env.add_function("static_url", move |path: &str| files.static_url(path));
        })
    }

    /// Adds a context provider: for every render for a request, `provider` gives values
    /// (a map, such as minijinja's `context! {..}`) that every template sees besides the
    /// render's own context, which wins on a name both have (Tornado's
    /// `get_template_namespace`), for the request's own values; `xsrf_form_html()` and
    /// (with [`current_user`](Templates::current_user)) `current_user` are built in.
    /// Providers run in the order they were added; an earlier one wins on a name.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// use ioloop::web::Templates;
    /// use minijinja::{context, Value};
    ///
    /// let templates = Templates::new("templates").context(|req: &Request| {
    ///     let theme = req.cookie("theme").unwrap_or_else(|| "light".to_owned());
    ///     let version = Value::from_function(|| Value::from_safe_string("<b>1.0</b>".into()));
    ///     context! { theme, version }
    /// });
    /// # let _ = templates;
    /// ```
    pub fn context(self, provider: impl Fn(&Request) -> Value + 'static) -> Templates {
        self.inner.providers.borrow_mut().push(Rc::new(provider));
        self
    }

    /// Gives every template `current_user`: the request's
    /// [`current_user`](Request::current_user) of type `U` (as the application's
    /// [`current_user`](crate::web::Application::current_user) hook found it), or none
    /// (Tornado's template namespace has `current_user`).
    ///
    /// # Examples
    ///
    /// ```
    /// // {% if current_user %}Signed in as {{ current_user }}{% endif %}
    /// let templates = ioloop::web::Templates::new("templates").current_user::<String>();
    /// # let _ = templates;
    /// ```
    pub fn current_user<U: Serialize + 'static>(self) -> Templates {
        self.context(|req| minijinja::context! { current_user => req.current_user::<U>() })
    }

    /// Changes the minijinja environment: filters, functions, globals, syntax.
    ///
    /// # Examples
    ///
    /// ```
    /// let templates = ioloop::web::Templates::new("templates").configure(|env| {
    ///     env.add_filter("shout", |s: String| s.to_uppercase());
    /// });
    /// # let _ = templates;
    /// ```
    pub fn configure(self, change: impl FnOnce(&mut Environment<'static>)) -> Templates {
        let mut env = (**self.inner.env.borrow()).clone();
        change(&mut env);
        self.replace_env(env);
        self
    }

    /// Renders template `name` for `request` into a string (Tornado's `render_string`):
    /// `context` (anything serializable, such as `context! {..}`), the context
    /// providers' values for `request`, the built-ins (`xsrf_form_html()`, which sets the
    /// `_xsrf` cookie on the answer when the request had none, and `request_path`), and
    /// `static_url()` if set.
    ///
    /// # Errors
    ///
    /// A [`TemplateError`]: the template is missing, does not parse, or fails while
    /// rendering.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::Request;
    /// use minijinja::context;
    /// let templates = ioloop::web::Templates::new("templates");
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let mail = templates.render_string(&req, "mail.txt", context! { name => "Ada" })?;
    /// # let _ = mail;
    /// # Ok::<(), ioloop::web::TemplateError>(())
    /// ```
    pub fn render_string(
        &self,
        request: &Request,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, TemplateError> {
        let env = self.current_env();
        let providers: Vec<Provider> = self.inner.providers.borrow().clone();
        // `merge_maps` looks names up from the last map: the built-ins, the providers in
        // reverse (an earlier one wins), then the render's own context.
        let mut maps = vec![builtins(request)];
        maps.extend(providers.iter().rev().map(|provider| provider(request)));
        maps.push(Value::from_serialize(context));
        let template = env.get_template(name).map_err(TemplateError)?;
        template.render(merge_maps(maps)).map_err(TemplateError)
    }

    /// Renders template `name` for `request` as a `200` response (Tornado's `render`),
    /// its `Content-Type` by the name's extension (`text/html; charset=UTF-8` for
    /// `.html`).
    ///
    /// # Errors
    ///
    /// As [`render_string`](Templates::render_string); the error answers 500 when a
    /// handler returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// use ioloop::web::{minijinja::context, Templates};
    ///
    /// let templates = Templates::new("templates").configure(|env| {
    ///     env.add_template("item.html", "<h1>{{ title }}</h1>").unwrap();
    /// });
    /// let req = Request::parse(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let response = templates.render(&req, "item.html", context! { title => "Tea & cake" })?;
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.get_header("content-type"), Some("text/html; charset=UTF-8"));
    /// assert_eq!(response.body_bytes(), b"<h1>Tea &amp; cake</h1>");
    /// # Ok::<(), ioloop::web::TemplateError>(())
    /// ```
    pub fn render(
        &self,
        request: &Request,
        name: &str,
        context: impl Serialize,
    ) -> Result<Response, TemplateError> {
        let body = self.render_string(request, name, context)?;
        Ok(Response::new(200)
            .header("Content-Type", content_type(name))
            .body(body))
    }

    /// The environment to render with: in debug mode, a fresh one when a loaded file
    /// changed. No borrow is held once it is returned.
    fn current_env(&self) -> Rc<Environment<'static>> {
        if *self.inner.debug.borrow() && self.changed() {
            let mut env = (**self.inner.env.borrow()).clone();
            env.clear_templates();
            if let Ok(mut loaded) = self.inner.loaded.lock() {
                loaded.clear();
            }
            self.replace_env(env);
        }
        self.inner.env.borrow().clone()
    }

    /// Installs `env`; the one it replaces (with its user functions) is dropped after
    /// the borrow ends.
    fn replace_env(&self, env: Environment<'static>) {
        let old = std::mem::replace(&mut *self.inner.env.borrow_mut(), Rc::new(env));
        drop(old);
    }

    /// Whether a loaded template's file changed (its modification time differs, or it
    /// is gone).
    fn changed(&self) -> bool {
        let Ok(loaded) = self.inner.loaded.lock() else {
            return true;
        };
        loaded.iter().any(|(name, at)| {
            template_file(&self.inner.root, name).is_none_or(|path| modified(&path) != *at)
        })
    }
}

impl Request {
    /// Renders template `name` with the application's
    /// [`templates`](crate::web::Application::templates) as a `200` response (Tornado's
    /// `self.render`): [`Templates::render`] for this request (feature `templates`). Its
    /// error is an [`HttpError`], as from the request's other helpers
    /// ([`get_argument`](Request::get_argument), ...), so a handler returns it as is.
    ///
    /// # Errors
    ///
    /// `500`, with the [`TemplateError`] as its log message (never shown to the client):
    /// the template is missing, does not parse or fails, or the application has no
    /// templates.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{HttpError, Request, Response};
    /// use ioloop::web::minijinja::context;
    /// use ioloop::web::{get, Application, Templates};
    ///
    /// async fn login_form(req: Request) -> Result<Response, HttpError> {
    ///     let next = req.get_argument_or("next", "/")?;
    ///     req.render("login.html", context! { next })
    /// }
    /// let app = Application::new()
    ///     .templates(Templates::new("templates"))
    ///     .route("/login", get(login_form));
    /// # let _ = app;
    /// ```
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<Response, HttpError> {
        Ok(self.app_templates()?.render(self, name, context)?)
    }

    /// Renders template `name` with the application's
    /// [`templates`](crate::web::Application::templates) into a string (Tornado's
    /// `self.render_string`).
    ///
    /// # Errors
    ///
    /// As [`render`](Request::render).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{HttpError, Request, Response};
    /// use ioloop::web::minijinja::context;
    ///
    /// async fn mail(req: Request) -> Result<Response, HttpError> {
    ///     let text = req.render_string("welcome.txt", context! { name => "Ada" })?;
    ///     Ok(Response::text(text))
    /// }
    /// ```
    pub fn render_string(&self, name: &str, context: impl Serialize) -> Result<String, HttpError> {
        Ok(self.app_templates()?.render_string(self, name, context)?)
    }

    fn app_templates(&self) -> Result<&Templates, HttpError> {
        let templates = self.settings().and_then(|s| s.templates.as_ref());
        let templates = templates.and_then(|t| t.downcast_ref::<Templates>());
        templates
            .ok_or_else(|| HttpError::new(500).log("Request::render needs Application::templates"))
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("root", &self.inner.root)
            .field("debug", &*self.inner.debug.borrow())
            .field("providers", &self.inner.providers.borrow().len())
            .finish_non_exhaustive()
    }
}

/// A template that could not be rendered: missing, malformed, or failing while it ran.
/// It answers `500 Internal Server Error` (logged with the detail, which the client does
/// not see); [`status`](TemplateError::status) and [`message`](TemplateError::message)
/// let an application's own error type take it over.
///
/// # Examples
///
/// ```
/// use ioloop::http::{IntoResponse, Request};
/// let templates = ioloop::web::Templates::new("/no/such/folder");
/// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let err = templates.render(&req, "index.html", ()).unwrap_err();
/// assert_eq!(err.status(), 500);
/// assert!(err.message().contains("index.html"));
/// assert_eq!(err.into_response().status(), 500);
/// ```
#[derive(Debug)]
pub struct TemplateError(minijinja::Error);

impl TemplateError {
    /// 500.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{IntoResponse, Request};
    /// use ioloop::web::Templates;
    ///
    /// let templates = Templates::new("templates").configure(|env| {
    ///     env.add_template("page.html", "{{ no_such_function() }}").unwrap();
    /// });
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let err = templates.render(&req, "page.html", ()).unwrap_err(); // fails while it runs
    /// assert_eq!(err.status(), 500);
    /// assert_eq!(err.into_response().status(), 500);
    /// ```
    pub fn status(&self) -> u16 {
        500
    }

    /// What went wrong, for the log (template name, line, minijinja's reason).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// use ioloop::web::Templates;
    ///
    /// let templates = Templates::new("templates").configure(|env| {
    ///     let source = "<ul>\n{% for x in 5 %}<li>{{ x }}{% endfor %}</ul>";
    ///     env.add_template("list.html", source).unwrap();
    /// });
    /// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let err = templates.render_string(&req, "list.html", ()).unwrap_err();
    /// // "invalid operation: number is not iterable (in list.html:2)"
    /// assert!(err.message().contains("not iterable") && err.message().contains("list.html:2"));
    /// ```
    pub fn message(&self) -> String {
        let mut text = self.0.to_string();
        if let Some(detail) = self.0.display_debug_info().to_string().lines().next() {
            if !detail.is_empty() {
                text = format!("{text} ({detail})");
            }
        }
        text
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `500 Internal Server Error`, the error logged at `error` level; an application's
/// [`error_page`](crate::web::Application::error_page) replaces the page.
impl IntoResponse for TemplateError {
    fn into_response(self) -> Response {
        log::error!(target: "ioloop::web", "template error: {}", self.message());
        Response::error(500).default_page_of(HttpError::new(500))
    }
}

/// A `500` whose log message is the template error (never shown to the client).
impl From<TemplateError> for HttpError {
    fn from(error: TemplateError) -> HttpError {
        HttpError::new(500).log(format!("template error: {}", error.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_types_follow_the_name() {
        assert!(matches!(escape_for("page.html"), AutoEscape::Html));
        assert!(matches!(escape_for("a/b.HTM"), AutoEscape::Html));
        assert!(matches!(escape_for("feed.xml"), AutoEscape::Html));
        assert!(matches!(escape_for("noext"), AutoEscape::Html));
        assert!(matches!(escape_for("mail.txt"), AutoEscape::Html));
        assert!(matches!(escape_for("app.js"), AutoEscape::Json));
        assert!(matches!(escape_for("data.JSON"), AutoEscape::Json));
        assert_eq!(content_type("page.html"), "text/html; charset=UTF-8");
        assert_eq!(content_type("mail.txt"), "text/plain; charset=UTF-8");
        assert_eq!(content_type("feed.xml"), "text/xml; charset=UTF-8");
    }

    #[test]
    fn template_names_stay_in_the_folder() {
        let root = Path::new("/t");
        assert_eq!(
            template_file(root, "a/b.html"),
            Some(PathBuf::from("/t/a/b.html"))
        );
        assert_eq!(template_file(root, "../secret"), None);
        assert_eq!(template_file(root, "/etc/passwd"), None);
        assert_eq!(template_file(root, "a/./b"), Some(PathBuf::from("/t/a/b")));
    }
}
