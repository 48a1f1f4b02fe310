-- amorsize-lsp for Neovim 0.11+ (vim.lsp.config format).
--
-- Put editors/neovim on 'runtimepath' (or copy this file to ~/.config/nvim/lsp/),
-- then enable it:   vim.lsp.enable('amorsize')
-- Override any key: vim.lsp.config('amorsize', { settings = { amorsize = { trusted = true } } })
--
-- The settings keys are pinned (see docs/editors.md); the values below are the defaults.
-- Sampling runs your code: it is refused until `trusted` and `sampling.enabled` are true.
return {
  cmd = { 'amorsize-lsp' },
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', '.git' },
  settings = {
    amorsize = {
      trusted = false,
      sampling = { enabled = false, budgetSeconds = 2.0 },
      diagnostics = { debounceMs = 150 },
      lint = { select = {}, ignore = {} },
      inlayHints = { enabled = true },
      -- interpreter = '/path/to/python',  -- the Python that runs your code when sampling
      daemon = { autoStart = true },
      logLevel = 'warning',
    },
  },
}
