// placeholder until the plugin lands; see issue 3
export {};
