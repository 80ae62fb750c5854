-- QubeSec's dynamic upstreams: endpoint lists live in the shared dict qubesec_endpoints, so a Pod coming or going
-- changes one entry instead of reloading NGINX. The controller writes them twice: to a file that init() loads at every
-- start and reload, and to the status server's /qubesec/endpoints, which update() applies at once to all workers.
--
-- An entry is "<upstream> <address>:<port> ..." (IPv6 in brackets); an upstream with no endpoint is present and empty.
-- NGINX has one upstream block for all of them: each proxying location names its upstreams in $qubesec_upstreams,
-- route() picks one in the access phase and balance() its endpoint.
--
-- New hosts, which the running configuration has no server block for yet, are served by the catch-all server from the
-- table in qubesec_new_hosts, which the controller replaces whole through /qubesec/new-hosts: certificate() chooses
-- their certificates in the handshake, new_host_rewrite() and new_host() route their requests.
local balancer = require("ngx.balancer")
local ssl = require("ngx.ssl")

local endpoints = ngx.shared.qubesec_endpoints
-- Hosts served before the reload that brings their server blocks (docs/architecture.md#new-hosts-without-a-reload):
-- "<host> <certificate files, comma-separated, or -> <https redirect port or -> [<exact|prefix> <path> <upstreams,>]...".
local new_hosts = ngx.shared.qubesec_new_hosts
local MAX_TRIES = 3
-- Idle connections to pods (balancer_keepalive sets how many a worker keeps): NGINX's keepalive_timeout and
-- keepalive_requests defaults.
local KEEPALIVE_SECONDS = 60
local KEEPALIVE_REQUESTS = 1000

local _M = {}

-- Per worker: the parsed form of each entry, re-parsed only when the entry changes.
local parsed = {}
-- Per worker: the round-robin position of each upstream.
local cursor = {}

local function parse(line)
  local name, rest = line:match("^(%S+)%s*(.-)%s*$")
  return name, rest
end

local function peers_of(name)
  local raw = endpoints:get(name)
  if raw == nil then
    return nil
  end
  local cached = parsed[name]
  if cached and cached.raw == raw then
    return cached.peers
  end
  local peers = {}
  for host, port in raw:gmatch("(%S+):(%d+)") do
    -- host keeps an IPv6 address's brackets, as set_current_peer wants it.
    peers[#peers + 1] = { host = host, address = host:match("^%[(.*)%]$") or host, port = tonumber(port), key = host .. ":" .. port }
  end
  parsed[name] = { raw = raw, peers = peers }
  return peers
end

-- Sets each "<name> <value>" line of text in dict, all of them even when some fail; returns how many were set, and
-- the names that were not with the first error.
local function dict_name(dict)
  return dict == endpoints and "qubesec_endpoints" or "qubesec_new_hosts"
end

local function store(dict, text)
  local count, failed, first_error = 0, {}, nil
  for line in text:gmatch("[^\n]+") do
    local name, rest = parse(line)
    if name then
      -- safe_set: a full dict must fail loudly, never evict another upstream's endpoints. (A failed set of an existing
      -- name has removed its old value: the controller then reloads, and init() loads the whole file again.)
      local ok, err = dict:safe_set(name, rest)
      if ok then
        count = count + 1
      else
        failed[#failed + 1] = name
        first_error = first_error or err
      end
    end
  end
  if #failed > 0 then
    return count, dict_name(dict) .. ": " .. first_error .. ": " .. #failed .. " upstreams not stored: "
      .. table.concat(failed, " ", 1, math.min(#failed, 10)) .. (#failed > 10 and " ..." or "")
  end
  return count
end

-- Deletes the names of dict that no line of text sets.
local function forget_unlisted(dict, text)
  local listed = {}
  for line in text:gmatch("[^\n]+") do
    listed[(parse(line))] = true
  end
  for _, name in ipairs(dict:get_keys(0)) do
    if not listed[name] then
      dict:delete(name)
    end
  end
end

-- init_by_lua: load the controller's endpoint file. Names it no longer lists belong to upstreams that are gone: they
-- go first, so their memory is free for the lines that follow. A failure is logged and kept for load_report(): workers
-- inherit it from the master.
function _M.init(file)
  local f = io.open(file, "r")
  if not f then
    return
  end
  local text = f:read("*a")
  f:close()
  forget_unlisted(endpoints, text)
  local _, err = store(endpoints, text)
  if err then
    _M.load_error = err
    ngx.log(ngx.ERR, err)
  end
end

-- content_by_lua of the local-only /qubesec/endpoints/load: whether init() stored every line, which the controller asks
-- after each reload.
function _M.load_report()
  if _M.load_error then
    ngx.status = ngx.HTTP_INSUFFICIENT_STORAGE
    ngx.say(_M.load_error)
    return ngx.exit(ngx.HTTP_INSUFFICIENT_STORAGE)
  end
  ngx.say("loaded")
end

local function request_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body == nil then
    local file = ngx.req.get_body_file()
    if file then
      local f = io.open(file, "r")
      body = f:read("*a")
      f:close()
    end
  end
  return body or ""
end

-- Stores the lines and answers how many, or 507 and why not.
local function answer_stored(dict, text)
  local count, err = store(dict, text)
  if err then
    ngx.status = ngx.HTTP_INSUFFICIENT_STORAGE
    ngx.say(err)
    return ngx.exit(ngx.HTTP_INSUFFICIENT_STORAGE)
  end
  ngx.say(count)
end

-- A local-only control endpoint: GET answers list(), POST gives the request body to post(), anything else is 405.
local function control(list, post)
  local method = ngx.req.get_method()
  if method == "GET" then
    return list()
  end
  if method ~= "POST" then
    return ngx.exit(ngx.HTTP_NOT_ALLOWED)
  end
  return post(request_body())
end

local function sorted_names(dict)
  local names = dict:get_keys(0)
  table.sort(names)
  return names
end

-- content_by_lua of /qubesec/endpoints: POST stores lines, GET lists what the workers balance over:
-- "<upstream> <address> <port>" for each endpoint, "<upstream>" alone for one without.
function _M.update()
  return control(function()
    for _, name in ipairs(sorted_names(endpoints)) do
      local peers = peers_of(name) or {}
      if #peers == 0 then
        ngx.say(name)
      end
      for _, peer in ipairs(peers) do
        ngx.say(name, " ", peer.address, " ", peer.port)
      end
    end
  end, function(body)
    return answer_stored(endpoints, body)
  end)
end

-- content_by_lua of /qubesec/new-hosts: POST replaces the whole table of new hosts with its lines (the controller
-- sends every new host each time, none after the reload that brought their server blocks); GET lists it.
function _M.update_new_hosts()
  return control(function()
    for _, name in ipairs(sorted_names(new_hosts)) do
      ngx.say(name, " ", new_hosts:get(name))
    end
  end, function(body)
    forget_unlisted(new_hosts, body)
    return answer_stored(new_hosts, body)
  end)
end

-- Per worker: each $qubesec_upstreams value split into its names.
local routes = {}
-- Per worker: the keepalive pool of each upstream name.
local pools = {}

local function names_of(value)
  local names = routes[value]
  if not names then
    names = {}
    for name in value:gmatch("%S+") do
      names[#names + 1] = name
    end
    routes[value] = names
  end
  return names
end

-- Idle connections are pooled by pod address and this key, so a connection made for one upstream (its TLS settings,
-- verified CA, client certificate) is never reused by another that reaches the same pod. The Lua module keeps at most
-- 32 bytes of a key (a longer one never matches), so the key is a digest of the name: 32 hex digits of its SHA-1.
local function pool_of(name)
  local key = pools[name]
  if not key then
    key = (ngx.sha1_bin(name):gsub(".", function(c) return string.format("%02x", c:byte()) end)):sub(1, 32)
    pools[name] = key
  end
  return key
end

-- The first of names that has an endpoint serves this request (balance() picks the endpoint); with none, answers
-- status. affinity is the value that keeps a client on one endpoint (session affinity), if any.
local function serve(names, status, affinity)
  for _, name in ipairs(names) do
    local peers = peers_of(name)
    if peers and #peers > 0 then
      local ctx = ngx.ctx
      ctx.qubesec_upstream = name
      -- The pool of the location's own upstream, as one upstream block per name had before.
      ctx.qubesec_pool = pool_of(names[1])
      ctx.qubesec_affinity = affinity
      return
    end
  end
  ngx.log(ngx.WARN, "no ready endpoint in upstream ", table.concat(names, " or "), "; answering ", status)
  return ngx.exit(status)
end

-- access_by_lua of a proxying location: the first of the upstreams its $qubesec_upstreams names that has an endpoint
-- serves (the location's own, then its default-backend); with none, the location answers `status` (503, or 404 for
-- the default backend as NGINX without one would). `affinity_variable` names the variable whose value keeps a client
-- on one endpoint (session affinity).
function _M.route(status, affinity_variable)
  local value = ngx.var.qubesec_upstreams
  if not value then
    ngx.log(ngx.ERR, "location sets no $qubesec_upstreams")
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
  return serve(names_of(value), status, affinity_variable and ngx.var[affinity_variable])
end

-- Per worker: each $qubesec_branches value parsed (controller/render/render.ts branchesValue writes it).
local branch_lists = {}

local function parse_branches(value)
  local list = branch_lists[value]
  if list then
    return list
  end
  list = {}
  for text in value:gmatch("%S+") do
    local b = { headers = {}, query = {}, backends = {}, total = 0, request = {}, response = {} }
    for field in text:gmatch("[^,]+") do
      local parts = {}
      for part in (field .. ":"):gmatch("([^:]*):") do
        parts[#parts + 1] = ngx.unescape_uri(part)
      end
      local kind = parts[1]
      if kind == "m" then
        b.method = parts[2]
      elseif kind == "h" or kind == "q" then
        local target = kind == "h" and b.headers or b.query
        -- A regular expression must match the whole value, as the path's does.
        target[#target + 1] = { name = parts[2], regex = parts[3] == "r", value = parts[3] == "r" and ("^(?:" .. parts[4] .. ")$") or parts[4] }
      elseif kind == "b" then
        local weight = tonumber(parts[3])
        b.backends[#b.backends + 1] = { name = parts[2], weight = weight }
        b.total = b.total + weight
      elseif kind == "uh" then
        b.host = parts[2]
      elseif kind == "uf" then
        b.full_path = parts[2]
      elseif kind == "up" then
        b.prefix, b.replacement = parts[2], parts[3]
      elseif kind == "t" then
        b.timeout = tonumber(parts[2]) / 1000
      elseif kind == "r" then
        b.redirect = { code = tonumber(parts[2]), scheme = parts[3], host = parts[4], port = parts[5] }
      elseif kind == "rf" then
        b.redirect.full_path = parts[2]
      elseif kind == "rp" then
        b.redirect.prefix, b.redirect.replacement = parts[2], parts[3]
      else
        local edits = kind:sub(1, 1) == "q" and b.request or b.response
        edits[#edits + 1] = { op = kind:sub(2, 2), name = parts[2], value = parts[3] }
      end
    end
    list[#list + 1] = b
  end
  branch_lists[value] = list
  return list
end

local function value_matches(wanted, value)
  if value == nil then
    return false
  end
  if wanted.regex then
    return ngx.re.find(value, wanted.value, "jo") ~= nil
  end
  return value == wanted.value
end

-- A repeated header is its values joined by commas (RFC 9110).
local function header_value(value)
  if type(value) == "table" then
    return table.concat(value, ",")
  end
  return value
end

-- The path a URLRewrite sends upstream: the whole path replaced, or the part the match's prefix matched (the spec:
-- "/strip" replaced by "/" makes "/strip/a" "/a", and "/strip" "/").
local function rewritten(b, uri)
  if b.full_path then
    return b.full_path
  end
  if not b.prefix then
    return uri
  end
  local rest = uri:sub(#b.prefix + 1)
  if b.replacement:sub(-1) == "/" and rest:sub(1, 1) == "/" then
    rest = rest:sub(2)
  end
  local path = b.replacement .. rest
  return path == "" and "/" or path
end

-- A branch's RequestRedirect: each part it leaves empty is the request's; the path as the client sent it (so that
-- what it escaped stays escaped), rewritten as a URLRewrite's is, and the query kept.
local function redirect(r)
  local path, query = ngx.var.request_uri:match("^([^?]*)(.*)$")
  local scheme = r.scheme ~= "" and r.scheme or ngx.var.scheme
  local host = r.host ~= "" and r.host or ngx.var.host
  return ngx.redirect(scheme .. "://" .. host .. r.port .. rewritten(r, path) .. query, r.code)
end

-- A repeated query parameter is its first value; one without a value is empty.
local function holds(b, headers, args)
  if b.method and ngx.req.get_method() ~= b.method then
    return false
  end
  for _, h in ipairs(b.headers) do
    if not value_matches(h, header_value(headers[h.name])) then
      return false
    end
  end
  for _, q in ipairs(b.query) do
    local value = args[q.name]
    if type(value) == "table" then
      value = value[1]
    end
    if value == true then
      value = ""
    end
    if not value_matches(q, value) then
      return false
    end
  end
  return true
end

local function pick(b)
  if #b.backends == 1 then
    return b.backends[1].name
  end
  if b.total <= 0 then
    return nil
  end
  local draw = math.random(b.total)
  for _, backend in ipairs(b.backends) do
    draw = draw - backend.weight
    if draw <= 0 then
      return backend.name
    end
  end
end

-- access_by_lua of a location with branches (Gateway API matches and filters): the first branch whose method,
-- headers and query parameters the request has serves it, with a backend drawn by weight, after its request header
-- edits and URL rewrite; its response header edits wait in ngx.ctx for edit_response_headers(), its timeout for
-- balance(). No branch: 404, as the spec asks.
function _M.branch(affinity_variable)
  local value = ngx.var.qubesec_branches
  if not value then
    ngx.log(ngx.ERR, "location sets no $qubesec_branches")
    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
  end
  local headers = ngx.req.get_headers(0)
  local args = ngx.req.get_uri_args(0)
  for _, b in ipairs(parse_branches(value)) do
    if holds(b, headers, args) then
      if b.redirect then
        return redirect(b.redirect)
      end
      for _, edit in ipairs(b.request) do
        if edit.op == "s" then
          ngx.req.set_header(edit.name, edit.value)
        elseif edit.op == "a" then
          local held = header_value(headers[edit.name])
          ngx.req.set_header(edit.name, held and (held .. "," .. edit.value) or edit.value)
        else
          ngx.req.clear_header(edit.name)
        end
      end
      if #b.response > 0 then
        ngx.ctx.qubesec_response_edits = b.response
      end
      if b.host then
        ngx.var.qubesec_upstream_host = b.host
      end
      if b.full_path or b.prefix then
        ngx.req.set_uri(rewritten(b, ngx.var.uri), false)
      end
      ngx.ctx.qubesec_timeout = b.timeout
      -- No backend, or a refused backendRef (''): the spec's 500.
      local name = pick(b)
      if not name or name == "" then
        return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
      end
      return serve({ name }, 503, affinity_variable and ngx.var[affinity_variable])
    end
  end
  return ngx.exit(ngx.HTTP_NOT_FOUND)
end

-- header_filter_by_lua of a location with branches: the chosen branch's response header edits.
function _M.edit_response_headers()
  local edits = ngx.ctx.qubesec_response_edits
  if not edits then
    return
  end
  for _, edit in ipairs(edits) do
    if edit.op == "s" then
      ngx.header[edit.name] = edit.value
    elseif edit.op == "a" then
      local held = ngx.header[edit.name]
      if held == nil then
        ngx.header[edit.name] = edit.value
      elseif type(held) == "table" then
        held[#held + 1] = edit.value
        ngx.header[edit.name] = held
      else
        ngx.header[edit.name] = { held, edit.value }
      end
    else
      ngx.header[edit.name] = nil
    end
  end
end

-- Per worker: each new host's parsed entry, re-parsed only when the entry changes.
local new_host_entries = {}

local function split(value, separator)
  local parts = {}
  for part in value:gmatch("[^" .. separator .. "]+") do
    parts[#parts + 1] = part
  end
  return parts
end

local function new_host(host)
  local raw = host and new_hosts:get(host)
  if raw == nil then
    return nil
  end
  local cached = new_host_entries[host]
  if cached and cached.raw == raw then
    return cached
  end
  local tokens = split(raw, " ")
  local entry = {
    raw = raw,
    certificates = tokens[1] ~= "-" and split(tokens[1], ",") or nil,
    redirect_port = tokens[2] ~= "-" and tokens[2] or nil,
    exact = {},
    prefixes = {},
    slashed = {},
  }
  for i = 3, #tokens - 2, 3 do
    local match, path, names = tokens[i], tokens[i + 1], split(tokens[i + 2], ",")
    if match == "exact" then
      entry.exact[path] = names
    else
      entry.prefixes[#entry.prefixes + 1] = { path = path, names = names }
      if path ~= "/" and path:sub(-1) == "/" then
        entry.slashed[path] = true
      end
    end
  end
  -- As NGINX picks among prefix locations: the longest that matches.
  table.sort(entry.prefixes, function(a, b) return #a.path > #b.path end)
  new_host_entries[host] = entry
  return entry
end

-- Per worker: the parsed certificate and key of each file the catch-all serves (files are named by their content).
local pairs_by_file = {}

local function load_pair(file)
  local pair = pairs_by_file[file]
  if pair then
    return pair
  end
  local f, err = io.open(file, "r")
  if not f then
    return nil, err
  end
  local pem = f:read("*a")
  f:close()
  local certificate, cert_err = ssl.parse_pem_cert(pem)
  if not certificate then
    return nil, cert_err
  end
  local key, key_err = ssl.parse_pem_priv_key(pem)
  if not key then
    return nil, key_err
  end
  pair = { certificate = certificate, key = key }
  pairs_by_file[file] = pair
  return pair
end

-- Per worker: each comma-separated list of files split.
local file_lists = {}

-- ssl_certificate_by_lua of the catch-all server, whose context NGINX picks for a name no server has: a new host's own
-- certificates, else `defaults` (comma-separated files, the default certificates); OpenSSL then picks ML-DSA or ECDSA
-- by the client's signature algorithms, as with any server's pairs. A name becomes a file only through the
-- controller's table: an unknown one costs one dictionary lookup, no file and no log line.
function _M.certificate(defaults)
  local name = ssl.server_name()
  local entry = name and new_host(name:lower())
  local files = entry and entry.certificates
  if not files then
    files = file_lists[defaults]
    if not files then
      files = split(defaults, ",")
      file_lists[defaults] = files
    end
  end
  local ok, err = ssl.clear_certs()
  if not ok then
    ngx.log(ngx.ERR, "cannot clear the certificates for ", name, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
  for _, file in ipairs(files) do
    local pair, load_err = load_pair(file)
    if pair then
      ok, err = ssl.set_cert(pair.certificate)
      if ok then
        ok, err = ssl.set_priv_key(pair.key)
      end
    else
      ok, err = false, load_err
    end
    if not ok then
      ngx.log(ngx.ERR, "cannot use ", file, " for ", name, ": ", err)
      return ngx.exit(ngx.ERROR)
    end
  end
end

-- server_rewrite_by_lua of the catch-all server: a request for a new host goes to @qubesec_new_host, before any of the
-- catch-all's own locations; over HTTPS only when the host has TLS, as its server block will listen.
function _M.new_host_rewrite()
  local entry = new_host(ngx.var.host)
  if entry and (entry.certificates or ngx.var.scheme == "http") then
    return ngx.exec("@qubesec_new_host")
  end
end

-- access_by_lua of @qubesec_new_host: what the host's server block will do. An exact path, else the longest prefix
-- (the model's paths are NGINX's string matchers, matched against the normalized $uri as NGINX does), redirects to
-- HTTPS where the host asks for it, and proxies to the first upstream with an endpoint; no path: the default backend
-- in $qubesec_upstreams, else 404.
function _M.new_host()
  local host = ngx.var.host
  local entry = new_host(host)
  if not entry then
    return ngx.exit(ngx.HTTP_NOT_FOUND)
  end
  local uri = ngx.var.uri
  local names = entry.exact[uri]
  if not names and entry.slashed[uri .. "/"] then
    -- NGINX's answer when only a prefix location ending in a slash matches the path with that slash added.
    local args = ngx.var.args
    return ngx.redirect(uri .. "/" .. (args and "?" .. args or ""), ngx.HTTP_MOVED_PERMANENTLY)
  end
  if not names then
    for _, prefix in ipairs(entry.prefixes) do
      if uri:sub(1, #prefix.path) == prefix.path then
        names = prefix.names
        break
      end
    end
  end
  if not names then
    local default_backend = ngx.var.qubesec_upstreams
    if default_backend == "" then
      return ngx.exit(ngx.HTTP_NOT_FOUND)
    end
    return serve(names_of(default_backend), ngx.HTTP_NOT_FOUND)
  end
  if entry.redirect_port and ngx.var.scheme == "http" then
    local port = entry.redirect_port == "443" and "" or ":" .. entry.redirect_port
    return ngx.redirect("https://" .. host .. port .. ngx.var.request_uri, 308)
  end
  return serve(names, ngx.HTTP_SERVICE_UNAVAILABLE)
end

-- Highest-random-weight hashing: a key keeps its endpoint while that endpoint stays, and only the keys of a removed
-- endpoint move.
local function by_hash(peers, key)
  local best, best_weight = nil, -1
  for _, peer in ipairs(peers) do
    local weight = ngx.crc32_long(key .. peer.key)
    if weight > best_weight then
      best, best_weight = peer, weight
    end
  end
  return best
end

local function next_peer(name, peers)
  local position = (cursor[name] or math.random(#peers)) % #peers + 1
  cursor[name] = position
  return peers[position]
end

-- balancer_by_lua of the one upstream: the endpoint of the upstream route() chose, round robin, or by the affinity
-- value when the location has one. A failed attempt moves on to the next endpoint, as proxy_next_upstream does with
-- static servers.
function _M.balance()
  local ctx = ngx.ctx
  local name = ctx.qubesec_upstream
  if not name then
    ngx.log(ngx.ERR, "no upstream chosen for this request: its location calls no route()")
    return ngx.exit(ngx.ERROR)
  end
  local peers = peers_of(name)
  if not peers or #peers == 0 then
    ngx.log(ngx.ERR, "upstream ", name, " has no endpoint")
    return ngx.exit(ngx.ERROR)
  end
  if ctx.qubesec_timeout then
    balancer.set_timeouts(ctx.qubesec_timeout, ctx.qubesec_timeout, ctx.qubesec_timeout)
  end
  local retry = balancer.get_last_failure() ~= nil
  if not retry and #peers > 1 then
    balancer.set_more_tries(math.min(#peers, MAX_TRIES) - 1)
  end
  local key = not retry and ctx.qubesec_affinity
  local peer = (key and key ~= "") and by_hash(peers, key) or next_peer(name, peers)
  -- The third argument names the pool; for TLS to pods NGINX still takes SNI and verification from proxy_ssl_name.
  local ok, err = balancer.set_current_peer(peer.host, peer.port, ctx.qubesec_pool)
  if ok then
    ok, err = balancer.enable_keepalive(KEEPALIVE_SECONDS, KEEPALIVE_REQUESTS)
  end
  if not ok then
    ngx.log(ngx.ERR, "upstream ", name, ": cannot use ", peer.key, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

return _M
