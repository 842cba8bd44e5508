//! The topic names of the outside contract, under `P = {prefix}/{estate}/{gateway}`.

/// Topic builder for one gateway.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, estate: &str, gateway: &str) -> Self {
        Self {
            base: format!("{prefix}/{estate}/{gateway}"),
        }
    }

    /// `P/status`: retained, also the last will.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `P/events/{kind}` or `P/alarms/{type}`, from a stored record's suffix.
    pub fn record(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.base)
    }

    /// `P/cmd/+`: what the gateway subscribes to.
    pub fn commands(&self) -> String {
        format!("{}/cmd/+", self.base)
    }

    /// The command name of a `P/cmd/{name}` topic.
    pub fn command_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic
            .strip_prefix(self.base.as_str())?
            .strip_prefix("/cmd/")
            .filter(|n| !n.is_empty() && !n.contains('/'))
    }

    /// `P/reply/{name}`.
    pub fn reply(&self, name: &str) -> String {
        format!("{}/reply/{name}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = Topics::new("cm", "e1", "g1");
        assert_eq!(t.status(), "cm/e1/g1/status");
        assert_eq!(t.record("events/access"), "cm/e1/g1/events/access");
        assert_eq!(t.command_name("cm/e1/g1/cmd/door.open"), Some("door.open"));
        assert_eq!(t.command_name("cm/e1/g2/cmd/door.open"), None);
        assert_eq!(t.command_name("cm/e1/g1/cmd/"), None);
        assert_eq!(t.reply("door.open"), "cm/e1/g1/reply/door.open");
    }
}
